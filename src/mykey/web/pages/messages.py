"""Every user-visible string of the pages, in Japanese and English (a small typed table).

Templates call `t("key", name=value)`; Python calls `page.t(...)`. Values are filled with
`str.format`. A test checks that every key has both languages and that every key used in a
template or page module is here. Long texts (terms, FAQ, guides) are templates per language
in `templates/navi/content/`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from mykey.web.pages.resident_messages import PAGES_RESIDENT


class M(NamedTuple):
    ja: str
    en: str


MESSAGES: dict[str, M] = {
    # layout
    "site.name": M("自治体ポイントナビ", "Municipal Point Navi"),
    "layout.skip": M("本文へ移動", "Skip to main content"),
    "layout.nav": M("サイト内メニュー", "Site menu"),
    "layout.language": M("言語の切替", "Language"),
    "layout.footer_nav": M("サイト情報", "About this site"),
    "layout.breadcrumbs": M("現在位置", "You are here"),
    "layout.copyright": M(
        "マイキープラットフォーム・自治体ポイント管理クラウド 運営協議会",
        "MyKey Platform and Municipal Point Cloud operating council",
    ),
    "nav.navi": M("ポイントナビ トップ", "Point Navi home"),
    "nav.map": M("地図から探す", "Find on the map"),
    "nav.mypage": M("利用者マイページ", "My Page"),
    "nav.staff_login": M("職員ログイン", "Staff sign-in"),
    "nav.staff_home": M("職員メニュー（{username}）", "Staff menu ({username})"),
    "nav.logout": M("ログアウト", "Sign out"),
    "nav.terms": M("利用規約", "Terms of use"),
    "nav.faq": M("よくある質問", "FAQ"),
    "nav.council": M("運営協議会の会員", "Council members"),
    "nav.guides": M("マニュアル", "Guides"),
    "nav.api": M("API の説明", "API documentation"),
    "list.sep": M("、", ", "),
    "unit.yen": M("{amount}円", "¥{amount}"),
    # forms
    "form.required": M("※必須", "Required"),
    "form.error_summary": M("入力内容を確認してください", "Please check what you entered"),
    # errors shown as pages
    "error.back_to_top": M("ポイントナビのトップへ戻る", "Back to Point Navi"),
    "error.forbidden.title": M("このページは表示できません", "You cannot see this page"),
    "error.forbidden.body": M(
        "この画面を使う権限がありません。別の役割のアカウントでログインしてください。",
        "Your account's role may not use this page. Sign in with an account that may.",
    ),
    "error.csrf.title": M("送信を受け付けられませんでした", "The form could not be accepted"),
    "error.csrf.body": M(
        "フォームの有効期限が切れたか、別のサイトから送信されました。"
        "ページを開き直してから、もう一度送信してください。",
        "The form has expired or was sent from another site. Open the page again and send"
        " the form once more.",
    ),
    "error.not_found.title": M("ページが見つかりません", "Page not found"),
    "error.not_found.body": M(
        "お探しのページはありません。アドレスを確かめてください。",
        "There is no such page. Please check the address.",
    ),
    "error.unavailable.title": M(
        "ただいまご利用いただけません", "The service is unavailable just now"
    ),
    "error.unavailable.body": M(
        "データベースに接続できません。数秒後にページを開き直してください。"
        "送信した内容が反映されたかどうかは、開き直した画面でご確認ください。",
        "The service cannot reach its database. Please open the page again in a few seconds,"
        " and check there whether what you sent has been recorded.",
    ),
    "error.busy.title": M("ただいま混み合っています", "It is very busy just now"),
    "error.busy.body": M(
        "多くの方が同時にご利用になっているため、このページをお見せできませんでした。"
        "お手数ですが、{seconds}秒ほどしてからページを開き直してください。"
        "ポイントや登録内容はそのまま残っています。",
        "So many people are using the service at once that this page could not be shown."
        " Please open it again in about {seconds} seconds. Your points and details are safe.",
    ),
    # sign-in
    "login.staff.title": M("職員ログイン", "Staff sign-in"),
    "login.staff.intro": M(
        "自治体・運営協議会・協力企業・加盟店の職員の方は、発行されたユーザー名とパスワードで"
        "ログインしてください。",
        "Staff of municipalities, the council, partners and shops: sign in with the username"
        " and password you were given.",
    ),
    "login.resident.title": M("利用者マイページへのログイン", "Sign in to My Page"),
    "login.resident.intro": M(
        "マイキーIDとパスワードでログインします。",
        "Sign in with your MyKey ID and password.",
    ),
    "login.username": M("ユーザー名", "Username"),
    "login.username.hint": M("例：toshima-staff", "For example: toshima-staff"),
    "login.username.missing": M("ユーザー名を入力してください。", "Enter your username."),
    "login.mykey_id": M("マイキーID", "MyKey ID"),
    "login.mykey_id.hint": M(
        "英数字 8 文字（例：MY123456）", "8 letters and digits (e.g. MY123456)"
    ),
    "login.mykey_id.missing": M("マイキーIDを入力してください。", "Enter your MyKey ID."),
    "login.password": M("パスワード", "Password"),
    "login.password.missing": M("パスワードを入力してください。", "Enter your password."),
    "login.submit": M("ログイン", "Sign in"),
    "login.failed": M("ログインできませんでした", "You could not be signed in"),
    "login.signed_in": M("ログインしました。", "You are signed in."),
    "login.signed_out": M("ログアウトしました。", "You have signed out."),
    # staff and My Page
    "staff.home.title": M("職員メニュー", "Staff menu"),
    "staff.home.body": M(
        "この役割で使える画面は、順次ここに追加されます。",
        "The pages your role can use will appear here.",
    ),
    "staff.username": M("ユーザー名", "Username"),
    "staff.role": M("役割", "Role"),
    "staff.bound_to": M("担当", "Works for"),
    "staff.council": M("運営協議会", "The operating council"),
    "role.operator": M("運営協議会（運用者）", "Council operator"),
    "role.municipality_staff": M("自治体職員", "Municipality staff"),
    "role.partner": M("協力企業", "Partner company"),
    "role.shop_staff": M("加盟店・施設の職員", "Shop or facility staff"),
    "mypage.title": M("利用者マイページ", "My Page"),
    "mypage.mykey_id": M("マイキーID", "MyKey ID"),
    "mypage.body": M(
        "ポイント残高・履歴などの画面は、順次ここに追加されます。",
        "Balances, history and more will appear here.",
    ),
    # Point Navi: top
    "navi.top.title": M("自治体ポイントナビ", "Municipal Point Navi"),
    "navi.top.lead": M(
        "マイナンバーカード1枚で、豊かなくらしを。",
        "One My Number card for a richer life in your town.",
    ),
    "navi.top.what": M(
        "自治体ポイントは、ボランティアや健康づくりへの参加で自治体からもらえるポイントや、"
        "協力企業のポイント・マイレージを交換したポイントです。1ポイント＝1円相当で、"
        "地域の商店や美術館、オンラインショップで使えます。",
        "Municipal points are points a municipality gives for volunteering or health"
        " activities, or that you get by converting a partner company's points or air miles."
        " One point is worth one yen at local shops, museums and online shops.",
    ),
    "navi.steps.title": M("ご利用までの 4 つのステップ", "Four steps to use your points"),
    "navi.step.card.title": M(
        "マイナンバーカードをお持ちですか？", "Do you have a My Number card?"
    ),
    "navi.step.card.body": M(
        "自治体ポイントの利用にはマイナンバーカードが必要です。お持ちでない方は発行してください。",
        "You need a My Number card to use municipal points. If you do not have one, apply for it.",
    ),
    "navi.step.card.href": M("/navi/faq", "/navi/faq"),
    "navi.step.card.link": M("カードについて（よくある質問）", "About the card (FAQ)"),
    "navi.step.mykey_id.title": M("マイキーIDを作成済みですか？", "Do you have a MyKey ID?"),
    "navi.step.mykey_id.body": M(
        "まだの方は、マイナンバーカードとICカードリーダーを用意して、マイキーIDを作成してください。",
        "If not, have your My Number card and a card reader ready and create a MyKey ID.",
    ),
    "navi.step.mykey_id.href": M("/navi/guides/residents", "/navi/guides/residents"),
    "navi.step.mykey_id.link": M("作り方（利用者向けマニュアル）", "How (guide for residents)"),
    "navi.step.convert.title": M(
        "ポイントやマイレージを交換しますか？",
        "Convert points or air miles?",
    ),
    "navi.step.convert.body": M(
        "協力企業のポイントやマイレージを、自治体ポイントに交換できます。",
        "You can convert a partner company's points or air miles into municipal points.",
    ),
    "navi.step.convert.href": M("/navi/faq", "/navi/faq"),
    "navi.step.convert.link": M("交換について（よくある質問）", "About converting (FAQ)"),
    "navi.step.balance.title": M("残高を確認しますか？", "Check your balance?"),
    "navi.step.balance.body": M(
        "ポイント残高（留保ポイント・自治体ポイント）は利用者マイページで確認できます。",
        "See your balances (reserved and municipal points) on My Page.",
    ),
    "navi.step.balance.href": M("/mypage", "/mypage"),
    "navi.step.balance.link": M("利用者マイページへ", "Go to My Page"),
    "navi.recommended.title": M("おすすめ自治体ポイント", "Recommended municipal points"),
    "navi.find.title": M("地図から探す", "Find by prefecture"),
    "navi.find.body": M(
        "都道府県を選ぶと、その地域の自治体ポイントと使えるお店、カードが使える図書館がわかります。",
        "Choose a prefecture to see its municipal points, where they can be used, and the"
        " libraries where the card works.",
    ),
    "navi.find.map": M("日本地図から探す", "Open the map of Japan"),
    "navi.programs.title": M("設定済み自治体ポイント一覧", "Municipal points set up so far"),
    "navi.programs.caption": M("{count} 件の自治体ポイント", "{count} municipal point programs"),
    "navi.none_yet": M("まだありません。", "None yet."),
    "navi.col.point": M("ポイント名", "Point"),
    "navi.col.municipality": M("自治体", "Municipality"),
    "navi.col.usable_at": M("使える場所", "Where it can be used"),
    "navi.col.place": M("お店・施設", "Shop or facility"),
    "navi.col.kind": M("種類", "Kind"),
    "navi.col.library": M("図書館", "Library"),
    "navi.col.zone": M("相互利用の圏域", "Shared-use zone"),
    "navi.col.item": M("商品", "Item"),
    "navi.col.shop": M("ショップ", "Shop"),
    "navi.col.price": M("価格", "Price"),
    "navi.usable_in_town": M("使えるお店・施設", "In town"),
    "navi.usable_online": M("オンラインで使える", "Online"),
    "navi.details": M("{name}の詳細", "More about {name}"),
    # map and prefectures
    "navi.map.title": M("日本地図から探す", "Map of Japan"),
    "navi.map.intro": M(
        "都道府県を選んでください。色の濃い都道府県には自治体ポイントがあります。"
        "キーボードの Tab キーで移動し、Enter キーで選べます。",
        "Choose a prefecture. Dark tiles have municipal points. Move with the Tab key and"
        " choose with Enter.",
    ),
    "navi.map.legend.with": M("自治体ポイントあり", "Has municipal points"),
    "navi.map.legend.without": M("まだなし", "None yet"),
    "navi.map.caption": M(
        "47 都道府県のタイル地図（位置はおおよそ）",
        "A tile map of the 47 prefectures (positions are approximate)",
    ),
    "navi.map.tile_count": M("（自治体ポイント {count} 件）", " ({count} point programs)"),
    "navi.map.list": M("自治体ポイントのある都道府県", "Prefectures with municipal points"),
    "navi.map.count": M("（{count} 件）", "({count})"),
    "navi.prefecture.title": M("{name}の自治体ポイント", "Municipal points in {name}"),
    "navi.prefecture.count": M(
        "{count} の自治体がポイントを設定しています。",
        "{count} municipalities have set up points.",
    ),
    "navi.prefecture.places": M("{name}が使えるお店・施設", "Where {name} can be used"),
    "navi.prefecture.no_places": M(
        "使えるお店・施設はまだ登録されていません。", "No shops or facilities are registered yet."
    ),
    "navi.prefecture.none": M(
        "この都道府県には、まだ自治体ポイントがありません。",
        "No municipality in this prefecture has set up points yet.",
    ),
    "navi.libraries.title": M("カードが使える図書館", "Libraries where the card works"),
    "navi.libraries.caption": M("{name}の図書館", "Libraries in {name}"),
    "navi.libraries.none": M("まだありません。", "None yet."),
    # picks, council, guides, texts
    "navi.picks.title": M("オンラインショップのおすすめ", "Online-shop picks"),
    "navi.picks.intro": M(
        "自治体がおすすめする、自治体ポイントで買えるオンラインショップの商品です。",
        "Items that municipalities recommend from online shops where their points can be used.",
    ),
    "navi.picks.caption": M("{name}のおすすめ", "Picks of {name}"),
    "navi.picks.none": M("まだ登録されていません。", "None have been entered yet."),
    "navi.council.title": M("運営協議会の会員自治体", "Members of the operating council"),
    "navi.council.intro": M(
        "{count} の自治体が会員として登録されています。",
        "{count} municipalities are registered as members.",
    ),
    "navi.terms.title": M("利用規約", "Terms of use"),
    "navi.faq.title": M("よくある質問", "Frequently asked questions"),
    "navi.guides.title": M("マニュアル", "Guides"),
    "navi.guides.intro": M(
        "立場ごとの使い方の手引きです。", "How to use the service, for each audience."
    ),
    "guide.residents": M("利用者の方へ", "For residents"),
    "guide.shop-staff": M("加盟店の方へ", "For shop staff"),
    "guide.library-staff": M("図書館職員の方へ", "For library staff"),
    "guide.voucher-staff": M("ポイント券を扱う方へ", "For voucher staff"),
    "guide.administrative-point-staff": M(
        "行政ポイントを付与する方へ", "For administrative-point staff"
    ),
    "guide.municipality-staff": M("自治体職員の方へ", "For municipality staff"),
    # kinds of place (points.programs.PLACE_KINDS)
    "kind.shop": M("商店", "Shop"),
    "kind.shopping_street": M("商店街", "Shopping street"),
    "kind.large_store": M("大型店", "Large store"),
    "kind.museum": M("美術館・博物館", "Museum"),
    "kind.facility_fee": M("施設利用料", "Facility fees"),
    "kind.pool": M("プール", "Pool"),
    "kind.hot_spring": M("温泉", "Hot spring"),
    "kind.bus": M("バス", "Bus"),
    "kind.taxi": M("タクシー", "Taxi"),
    "kind.tourist_office": M("観光案内所", "Tourist office"),
    "kind.online": M("オンライン", "Online"),
}

MESSAGES.update({key: M(*texts) for key, texts in PAGES_RESIDENT.items()})  # My Page, counter


def translate(lang: Literal["ja", "en"], key: str, /, **values: object) -> str:
    """The text of `key` in `lang`, with `{name}` placeholders filled. An unknown key is a
    defect (a test finds them all), so it raises KeyError."""
    text = MESSAGES[key].en if lang == "en" else MESSAGES[key].ja
    return text.format(**values) if values else text


# The consoles' texts (staff, council, partners) live in their own module.
from mykey.web.pages.console_messages import CONSOLE_MESSAGES  # noqa: E402

MESSAGES.update({key: M(*texts) for key, texts in CONSOLE_MESSAGES.items()})
