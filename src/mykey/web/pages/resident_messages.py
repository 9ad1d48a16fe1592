"""The texts of My Page and the counter terminal, (Japanese, English); merged into
`messages.MESSAGES` (kept apart so the pages' helpers edit different files)."""

from __future__ import annotations

PAGES_RESIDENT: dict[str, tuple[str, str]] = {
    "unit.points": ("ポイント", "points"),
    # the card simulator (demo only)
    "card.simulator.label": (
        "デモ用シミュレータ：実際の窓口ではカードリーダーにカードをかざします",
        "Demo simulator only: a real counter reads the card on a card reader",
    ),
    "card.simulator.pick": (
        "カードをかざす（シミュレータのカードを選ぶ）",
        "Tap a card (pick a simulator card)",
    ),
    "card.simulator.none": ("カードを選んでください", "Pick a card"),
    "card.simulator.hint": (
        "選んだカードで、サーバーが新しいチャレンジに署名します。",
        "The server signs a fresh challenge with the card you pick.",
    ),
    "card.no_reader": ("カードを読み取れません", "No card reader"),
    "card.no_reader.body": (
        "この環境ではカードでログインできません。マイキーIDとパスワードでログインしてください。",
        "Card sign-in is not available here. Sign in with your MyKey ID and password.",
    ),
    # My Page
    "mypage.nav": ("マイページのメニュー", "My Page menu"),
    "mypage.nav.points": ("ポイント残高", "Balances"),
    "mypage.nav.coupons": ("クーポンを交換", "Redeem a coupon"),
    "mypage.nav.vouchers": ("ポイント券", "Vouchers"),
    "mypage.vouchers.title": ("わたしのポイント券", "My vouchers"),
    "mypage.vouchers.intro": (
        "あなたの名前で発行されたポイント券・商品券・ランキングの賞品です。PDFを印刷して、"
        "使えるお店で出してください。1枚は1回だけ使えます（おつりは出ません）。期限までに使わ"
        "なかった賞品の券は失効します。",
        "Vouchers, gift certificates and ranking prizes issued in your name. Print the PDF and "
        "hand a voucher over where it is valid. Each is used once (no change is given). Prize "
        "vouchers not used by their last day lapse.",
    ),
    "mypage.vouchers.caption": (
        "発行されたポイント券（新しい順）",
        "Vouchers issued, newest first",
    ),
    "mypage.vouchers.kind": ("種類", "Kind"),
    "mypage.vouchers.what": ("内容", "What"),
    "mypage.vouchers.valid": ("有効期間", "Valid"),
    "mypage.vouchers.where": ("使える場所", "Where"),
    "mypage.vouchers.left": ("使える枚数", "Usable"),
    "mypage.vouchers.print": ("印刷", "Print"),
    "mypage.vouchers.pdf": ("PDF で印刷", "Print (PDF)"),
    "mypage.vouchers.pieces": (
        "{point_name} {value} ポイント × {count} 枚",
        "{count} × {value} points ({point_name})",
    ),
    "mypage.vouchers.usable": ("{count} 枚中 {usable} 枚", "{usable} of {count}"),
    "mypage.vouchers.anywhere": ("取扱店舗すべて", "Every shop taking the points"),
    "mypage.vouchers.none": ("まだありません。", "None yet."),
    "mypage.vouchers.program.wallet": ("ポイント券", "Point voucher"),
    "mypage.vouchers.program.gift": ("商品券", "Gift certificate"),
    "mypage.vouchers.program.prize": ("ランキングの賞品", "Ranking prize"),
    "mypage.vouchers.program.receipt": ("レシートのポイント券", "Receipt voucher"),
    "mypage.nav.history": ("ポイントの履歴", "Point history"),
    "mypage.nav.links": ("サービスIDと連携", "Service IDs and links"),
    "mypage.nav.usage": ("マイキーIDの利用履歴", "MyKey ID usage"),
    "mypage.nav.cards": ("カードの管理", "Cards"),
    "mypage.failed": ("できませんでした", "That did not work"),
    "mypage.older": ("さらに前を表示", "Show older"),
    "mypage.balances.title": ("自治体ごとのポイント残高", "Points per municipality"),
    "mypage.balances.none": ("まだポイントはありません。", "You have no points yet."),
    "mypage.expiring_soon": (
        "{date} に {points} ポイントの有効期限が切れます",
        "{points} points expire on {date}",
    ),
    "mypage.lots.caption": ("{name}の内訳と有効期限", "{name}: parts and their last day"),
    "mypage.col.funding": ("種類", "Kind"),
    "mypage.col.expires": ("有効期限", "Last day"),
    "mypage.col.points": ("ポイント", "Points"),
    "mypage.col.when": ("日時", "When"),
    "mypage.col.points_name": ("ポイント", "Points of"),
    "mypage.col.what": ("内容", "What"),
    "mypage.col.change": ("増減", "Change"),
    "mypage.col.receipt": ("証明", "Receipt"),
    "mypage.col.provider": ("事業者", "Provider"),
    "mypage.col.user_number": ("利用者番号", "User number"),
    "mypage.col.action": ("操作", "Action"),
    "mypage.col.service": ("サービス", "Service"),
    "mypage.col.external_id": ("ID", "ID"),
    "mypage.col.who": ("利用者", "By"),
    "mypage.col.purpose": ("目的", "Purpose"),
    "mypage.col.card": ("カード", "Card"),
    "mypage.col.valid_until": ("有効期限", "Valid until"),
    "mypage.col.state": ("状態", "State"),
    "mypage.col.converted_on": ("交換日時", "Converted"),
    "mypage.col.assign_by": ("振り分け期限", "Assign by"),
    "funding.budget": ("行政ポイント", "Administrative points"),
    "funding.partner": ("交換ポイント", "Converted points"),
    "funding.premium": ("プレミアム", "Premium"),
    "funding.special_event": ("特別イベント", "Special event"),
    "mypage.reserved.title": ("保留ポイント", "Reserved points"),
    "mypage.reserved.body": (
        "まだ自治体を選んでいないポイント：{points} ポイント",
        "Points not yet assigned to a municipality: {points}",
    ),
    "mypage.reserved.caption": (
        "保留ポイントの振り分け期限",
        "When to assign your reserved points",
    ),
    "mypage.reserved.deadline.default": (
        "振り分け期限の日までに移さなかったポイントは、その翌日に既定の自治体（{name}）へ移ります。",
        "Points you have not assigned by their date go to your default municipality ({name})"
        " the day after.",
    ),
    "mypage.reserved.deadline.none": (
        "既定の自治体が設定されていないため、振り分け期限を過ぎたポイントも有効期限まで保留のままです。",
        "You have no default municipality, so points past their date stay reserved until their"
        " last day.",
    ),
    "mypage.reserved.to": ("移す先の自治体", "Assign to"),
    "mypage.reserved.points": ("移すポイント数", "Points to assign"),
    "mypage.reserved.points.hint": ("空欄にするとすべて移します。", "Leave empty to assign all."),
    "mypage.reserved.submit": ("自治体ポイントに移す", "Assign the points"),
    "mypage.reserved.done": ("{points} ポイントを移しました。", "{points} points were assigned."),
    "mypage.points.invalid": (
        "ポイント数は 1 以上の整数で入力してください。",
        "Enter the points as a whole number of 1 or more.",
    ),
    "mypage.coupon.link": ("クーポンを自治体ポイントに交換する", "Redeem a coupon for points"),
    "mypage.history.link": ("ポイントの履歴を見る", "See your point history"),
    "mypage.coupon.title": ("クーポンを自治体ポイントに交換", "Redeem a coupon"),
    "mypage.coupon.intro": (
        "協力企業から受け取ったクーポンコードを入力し、ポイントを受け取る自治体を選んでください。",
        "Enter the coupon code you received from a partner and choose the municipality"
        " whose points you want.",
    ),
    "mypage.coupon.code": ("クーポンコード", "Coupon code"),
    "mypage.coupon.code.hint": ("例：ABCD-EFGH-JKLM-NPQR", "For example: ABCD-EFGH-JKLM-NPQR"),
    "mypage.coupon.code.missing": ("クーポンコードを入力してください。", "Enter the coupon code."),
    "mypage.coupon.municipality": (
        "ポイントを受け取る自治体",
        "Municipality to receive the points",
    ),
    "mypage.coupon.municipality.hint": (
        "迷ったら「保留ポイント」にして、後から選べます。",
        "Not sure? Choose reserved points and decide later.",
    ),
    "mypage.coupon.municipality.missing": (
        "ポイントを受け取る自治体を選んでください。",
        "Choose the municipality to receive the points.",
    ),
    "mypage.coupon.choose": ("選んでください", "Choose one"),
    "mypage.coupon.reserved": ("保留ポイント（後で選ぶ）", "Reserved points (choose later)"),
    "mypage.coupon.submit": ("交換する", "Redeem"),
    "mypage.coupon.failed": ("交換できませんでした", "The coupon could not be redeemed"),
    "mypage.coupon.done": (
        "クーポンを交換し、{points} ポイントを受け取りました。",
        "The coupon was redeemed: you received {points} points.",
    ),
    "mypage.history.title": ("ポイントの履歴", "Point history"),
    "mypage.history.intro": (
        "ポイントの出入りを新しい順に表示します。「証明」から、その取引が改ざんできない記録に"
        "含まれていることの証明（JSON）をダウンロードできます。",
        "Every change of your points, newest first. Download a receipt (JSON) proving that"
        " a transfer is in the tamper-evident record.",
    ),
    "mypage.history.caption": ("ポイントの履歴", "Point history"),
    "mypage.history.proof": ("証明をダウンロード", "Download receipt"),
    "mypage.history.none": ("まだ履歴はありません。", "No history yet."),
    "transfer.grant": ("付与", "Granted"),
    "transfer.convert": ("交換", "Converted"),
    "transfer.premium": ("プレミアム", "Premium"),
    "transfer.assign": ("保留ポイントから移動", "Assigned from reserved"),
    "transfer.spend": ("利用", "Spent"),
    "transfer.cancel": ("利用の取消", "Payment cancelled"),
    "transfer.refund": ("返金", "Refund"),
    "transfer.expire": ("有効期限切れ", "Expired"),
    "transfer.correct": ("訂正", "Correction"),
    "transfer.reverse": ("取消", "Reversal"),
    "transfer.voucher_issue": ("ポイント券の発行", "Vouchers issued"),
    "transfer.voucher_redeem": ("ポイント券の利用", "Voucher used"),
    "transfer.voucher_return": ("ポイント券の払戻し", "Voucher returned"),
    "transfer.online_authorize": ("オンラインでの利用", "Online purchase"),
    "transfer.online_refund": ("オンラインの返金", "Online refund"),
    "transfer.accrual_paid": ("積立ポイントの精算", "Accrued points settled"),
    "mypage.links.title": ("サービスIDと事業者との連携", "Service IDs and provider links"),
    "mypage.links.providers": ("図書館などとの連携", "Libraries and other providers"),
    "mypage.links.providers.intro": (
        "図書館などの利用者番号をマイキーIDに連携すると、窓口でカードをかざすだけで利用できます。",
        "Link your user number at a library or another provider to your MyKey ID, and tap"
        " your card at its counter.",
    ),
    "mypage.links.providers.caption": ("連携している事業者", "Linked providers"),
    "mypage.links.none": ("まだ連携はありません。", "No links yet."),
    "mypage.links.remove": ("{provider} との連携を解除", "Unlink {provider}"),
    "mypage.links.provider_id": ("事業者ID", "Provider ID"),
    "mypage.links.provider_id.hint": (
        "例：A1（大牟田市立図書館）",
        "For example: A1 (Omuta City Library)",
    ),
    "mypage.links.user_number": ("利用者番号", "User number"),
    "mypage.links.add": ("連携する", "Link"),
    "mypage.links.done.added": ("連携しました。", "Linked."),
    "mypage.links.done.removed": ("連携を解除しました。", "The link was removed."),
    "mypage.links.done.service": ("サービスIDを登録しました。", "The service ID was registered."),
    "mypage.services.title": ("サービスID", "Service IDs"),
    "mypage.services.intro": (
        "協力企業やオンラインショップでのIDを登録すると、そのサービスからマイキーIDを見つけて"
        "ポイントを交換できます。",
        "Register your ID at a partner or an online shop so it can find your MyKey ID for"
        " conversions.",
    ),
    "mypage.services.caption": ("登録したサービスID", "Registered service IDs"),
    "mypage.services.none": ("まだ登録はありません。", "None registered yet."),
    "mypage.services.service": ("サービス", "Service"),
    "mypage.services.service.hint": ("例：jal、docomo", "For example: jal, docomo"),
    "mypage.services.external_id": ("そのサービスでのID", "Your ID at that service"),
    "mypage.services.add": ("登録する", "Register"),
    "mypage.usage.title": ("マイキーIDの利用履歴", "Usage of my MyKey ID"),
    "mypage.usage.intro": (
        "いつ、だれが、何のためにあなたのマイキーIDを使ったかを新しい順に表示します。",
        "When, by whom and what for your MyKey ID was used, newest first.",
    ),
    "mypage.usage.caption": ("利用履歴", "Usage history"),
    "mypage.usage.none": ("まだ利用履歴はありません。", "No usage yet."),
    "usage.create": ("マイキーIDの作成", "MyKey ID created"),
    "usage.login": ("ログイン", "Signed in"),
    "usage.link": ("事業者との連携", "Linked at a provider"),
    "usage.unlink": ("連携の解除", "Unlinked"),
    "usage.lookup": ("窓口での照会", "Looked up at a counter"),
    "usage.lookup_not_linked": ("窓口での照会（未連携）", "Looked up (not linked)"),
    "usage.service_id": ("サービスIDの登録", "Service ID registered"),
    "usage.card_linked": ("カードの追加", "Card linked"),
    "usage.card_replaced": ("新しいカードへの切り替え", "Card replaced by a newer card"),
    "usage.card_suspended": ("カードの利用停止", "Card suspended"),
    "usage.failed_proof": ("カード確認の失敗", "Failed card check"),
    "usage.balances": ("窓口での残高の確認", "Balances shown at a counter"),
    "usage.pay": ("ポイントでの支払い", "Paid with points"),
    "usage.voucher_issue": ("ポイント券の発行", "Point vouchers issued"),
    "usage.gift_exchange": ("商品券への交換", "Exchanged for gift certificates"),
    "usage.conversion": ("ポイントの交換（協力企業）", "Points converted (partner)"),
    "mypage.cards.title": ("カードの管理", "Your cards"),
    "mypage.cards.intro": (
        "カードをなくしたときは、すぐに利用を停止してください。停止したカードはどこでも使えなくなります。"
        "更新・再発行した新しいカードを登録すると、それより前のカードは使えなくなります。",
        "If you lose a card, suspend it at once: it is refused everywhere from then on."
        " Once you link a renewed or reissued card, your older cards stop working.",
    ),
    "mypage.cards.caption": ("マイキーIDに登録したカード", "Cards of your MyKey ID"),
    "mypage.cards.state.active": ("利用できます", "Active"),
    "mypage.cards.state.suspended": ("利用停止中", "Suspended"),
    "mypage.cards.state.replaced": (
        "{at} に新しいカードに切り替え済み（使えません）",
        "Replaced by a newer card on {at} (no longer works)",
    ),
    "mypage.cards.state.replacing": (
        "{at} に新しいカードに切り替え済み（{until} まで使えます）",
        "Replaced by a newer card on {at} (works until {until})",
    ),
    "mypage.cards.suspend": ("利用を停止する", "Suspend"),
    "mypage.cards.suspended": ("カードの利用を停止しました。", "The card is suspended."),
    "mypage.suspend.title": ("カードの利用停止の確認", "Suspend this card?"),
    "mypage.suspend.warning": ("このカードは使えなくなります", "This card will stop working"),
    "mypage.suspend.body": (
        "停止すると、窓口・マイページを含むすべての場面でこのカードが使えなくなります。"
        "マイページから元に戻すことはできません。",
        "Once suspended, the card is refused everywhere, counters and My Page included."
        " You cannot undo this from My Page.",
    ),
    "mypage.suspend.submit": ("利用を停止する", "Suspend the card"),
    "mypage.suspend.cancel": ("やめる", "Cancel"),
    "mypage.card_login.title": ("カードでログイン", "Sign in with your card"),
    "mypage.card_login.intro": (
        "マイナンバーカードをカードリーダーにかざしてログインします。",
        "Tap your My Number card on the card reader to sign in.",
    ),
    "mypage.card_login.submit": ("カードでログイン", "Sign in with the card"),
    "mypage.card_login.password": (
        "マイキーIDとパスワードでログインする",
        "Sign in with MyKey ID and password",
    ),
    "mypage.card_login.link": ("カードでログインする", "Sign in with your card"),
    # the counter terminal
    "counter.title": ("窓口端末", "Counter terminal"),
    "counter.at": ("{place}（担当：{clerk}）", "{place} (clerk: {clerk})"),
    "counter.tap.title": ("カードをかざす", "Tap the card"),
    "counter.tap.body": (
        "お客様のマイナンバーカードをかざすと、この店で使えるポイントが表示されます。",
        "Tap the customer's My Number card to see the points they can use here.",
    ),
    "counter.tap.submit": ("カードを読み取る", "Read the card"),
    "counter.library.title": ("利用者番号の確認", "Find the user number"),
    "counter.library.body": (
        "利用者のマイナンバーカードをかざすと、この館の利用者番号が表示されます。",
        "Tap the user's My Number card to see their user number at this library.",
    ),
    "counter.redeem.title": ("ポイント券を受け取る", "Take a voucher"),
    "counter.redeem.number": ("ポイント券の番号（13 桁）", "Voucher number (13 digits)"),
    "counter.redeem.hint": (
        "バーコードを読み取るか、番号を入力してください。",
        "Scan the barcode or type the number.",
    ),
    "counter.redeem.submit": ("ポイント券を使う", "Use the voucher"),
    "counter.today.title": ("本日の支払い", "Today's payments"),
    "counter.today.caption": (
        "本日この店で受けたポイント払い",
        "Point payments at this shop today",
    ),
    "counter.today.none": ("本日の支払いはまだありません。", "No payments yet today."),
    "counter.today.cancelled": ("取消済み", "Cancelled"),
    "counter.today.refunded": ("返金あり", "Refunded"),
    "counter.today.cancel": ("取り消す（{time}・{points} pt）", "Cancel ({time}, {points} pt)"),
    "counter.col.municipality": ("自治体", "Municipality"),
    "counter.col.no": ("No", "No."),
    "counter.col.point_name": ("自治体ポイント名", "Points"),
    "counter.col.balance": ("保有ポイント", "Balance"),
    "counter.col.expiry": ("有効期限", "Expiry"),
    "counter.col.number": ("券番号", "Voucher number"),
    "counter.col.face": ("額面", "Face value"),
    "counter.col.valid_until": ("有効期限", "Valid until"),
    "counter.expiry": ("{date} まで {points} pt", "{points} pt until {date}"),
    "counter.balances.title": ("お客様のポイント", "The customer's points"),
    "counter.balances.caption": ("この店で使えるポイント", "Points usable at this shop"),
    "counter.balances.none": (
        "このお客様がこの店で使えるポイントはありません。",
        "This customer has no points they can use at this shop.",
    ),
    "counter.pay.title": ("ポイントで支払う（つかう）", "Pay with points"),
    "counter.pay.municipality": ("使うポイント", "Points to use"),
    "counter.pay.points": ("ご利用ポイント数", "Points to pay"),
    "counter.pay.submit": ("確認へ進む", "Continue"),
    "counter.voucher.title": ("ポイント券を発行する（券発行）", "Issue vouchers"),
    "counter.voucher.points": ("券にするポイント数", "Points to turn into vouchers"),
    "counter.voucher.denomination": (
        "1 枚あたりのポイント（任意）",
        "Points per voucher (optional)",
    ),
    "counter.voucher.denomination.hint": (
        "例：500 と入れると 500 ポイント券に分けます。空欄なら 1 枚です。",
        "E.g. 500 splits into 500-point vouchers. Leave empty for one voucher.",
    ),
    "counter.voucher.submit": ("確認へ進む", "Continue"),
    "counter.points.retry": (
        "ポイント数を数字で入力して、カードの読み取りからやり直してください。",
        "Enter the points as a number and start again by reading the card.",
    ),
    "counter.confirm.title": ("内容の確認", "Please confirm"),
    "counter.confirm.pay": ("{points} ポイントを使います。", "Pay {points} points."),
    "counter.confirm.vouchers": (
        "{points} ポイント分のポイント券を発行します。",
        "Issue vouchers for {points} points.",
    ),
    "counter.confirm.denomination": (
        "1 枚 {points} ポイントに分けます。",
        "{points} points per voucher.",
    ),
    "counter.confirm.tap_again": (
        "よろしければ、もう一度カードをかざして確定してください。",
        "If this is right, tap the card again to confirm.",
    ),
    "counter.confirm.tap_again_holder": (
        "よろしければ、{holder} のお客様のカードをもう一度かざして確定してください。"
        "ほかのカードでは確定できません。",
        "If this is right, tap the card of the customer {holder} again to confirm. No other"
        " card can confirm it.",
    ),
    "counter.holder": ("お客様（マイキーID）", "Customer (MyKey ID)"),
    "counter.gone": (
        "前のお客様の表示は終了しました（個人の情報は短い時間しか保持しません）。"
        "カードをかざして始めてください。",
        "The previous customer's screen has ended (a customer's details are kept only"
        " briefly). Tap a card to start.",
    ),
    "counter.payment.cancelled_title": ("取り消した支払い", "Cancelled payment"),
    "counter.payment.status": ("状態", "Status"),
    "counter.paid.rest_gone": (
        "お客様の残高は支払いの直後にだけ表示します。",
        "The customer's balance is shown only right after the payment.",
    ),
    "counter.confirm.submit": ("確定する", "Confirm"),
    "counter.confirm.cancel": ("やめる", "Cancel"),
    "counter.paid.title": ("支払いが完了しました", "Payment done"),
    "counter.paid.done": ("{points} ポイントを受け取りました。", "{points} points received."),
    "counter.paid.used": ("ご利用ポイント", "Points used"),
    "counter.paid.rest": ("残高ポイント", "Points left"),
    "counter.paid.cancel": ("この支払いを取り消す", "Cancel this payment"),
    "counter.next": ("次のお客様へ", "Next customer"),
    "counter.cancelled": (
        "支払いを取り消し、{points} ポイントをお客様に戻しました。",
        "The payment was cancelled: {points} points went back to the customer.",
    ),
    "counter.issued.title": ("ポイント券を発行しました", "Vouchers issued"),
    "counter.issued.done": (
        "{count} 枚（{points} ポイント分）を発行しました。印刷してお渡しください。",
        "{count} vouchers ({points} points) issued. Print them and hand them over.",
    ),
    "counter.issued.print": ("ポイント券を印刷する（PDF）", "Print the vouchers (PDF)"),
    "counter.issued.caption": ("発行したポイント券", "Vouchers issued"),
    "counter.redeemed.title": ("ポイント券を受け取りました", "Voucher taken"),
    "counter.redeemed.done": (
        "{points} ポイント分のポイント券を受け取りました。",
        "A voucher of {points} points was taken.",
    ),
    "counter.user_number.title": ("利用者番号", "User number"),
    "counter.user_number.label": ("{place}の利用者番号", "User number at {place}"),
    # refusals in a clerk's words
    "counter.error.other": ("処理できませんでした", "This could not be done"),
    "counter.error.card_not_read": (
        "カードが読み取れませんでした。もう一度かざしてください",
        "The card was not read. Tap it again",
    ),
    "counter.error.card_revoked": (
        "このカードは利用停止中です。ポイントは使えません",
        "This card is suspended. Its points cannot be used",
    ),
    "counter.error.card_expired": ("このカードは有効期限が切れています", "This card has expired"),
    "counter.error.card_replaced": (
        "更新前の古いカードです。新しいカードをかざしてください",
        "This is an old card, replaced by a newer one. Tap the new card",
    ),
    "counter.error.card_not_registered": (
        "このカードはマイキーIDが未登録です",
        "This card has no MyKey ID yet",
    ),
    "counter.error.untrusted_card": ("このカードは使えません", "This card cannot be used"),
    "counter.error.no_points": (
        "この店で使えるポイントがありません",
        "No points to use at this shop",
    ),
    "counter.error.insufficient_points": (
        "ポイントが足りません。ご利用ポイント数を減らしてください",
        "Not enough points. Use fewer points",
    ),
    "counter.error.not_accepted_here": (
        "このポイントはこの店では使えません",
        "These points cannot be used at this shop",
    ),
    "counter.error.voucher_expired": (
        "このポイント券は有効期限が切れています",
        "This voucher has expired",
    ),
    "counter.error.voucher_wrong_shop": (
        "このポイント券はこの店では使えません",
        "This voucher is not valid at this shop",
    ),
    "counter.error.voucher_already_redeemed": (
        "このポイント券は使用済みです",
        "This voucher has already been used",
    ),
    "counter.error.unknown_voucher": (
        "この番号のポイント券はありません。番号を確かめてください",
        "There is no voucher with this number. Check the number",
    ),
    "counter.error.invalid_voucher_number": (
        "番号が正しくありません。13 桁の番号を確かめてください",
        "The number is not right. Check the 13 digits",
    ),
    "counter.error.not_linked": (
        "このカードはこの館の利用者番号と連携されていません",
        "This card is not linked to a user number here",
    ),
    "counter.error.cancel_not_same_day": (
        "取り消せるのは当日の支払いだけです",
        "Only today's payments can be cancelled",
    ),
    "counter.error.already_cancelled": (
        "この支払いは取消済みです",
        "This payment is already cancelled",
    ),
    "counter.error.invalid_points": (
        "ポイント数が正しくありません",
        "The number of points is not right",
    ),
    "counter.error.invalid_denomination": (
        "1 枚あたりのポイントが正しくありません",
        "The points per voucher are not right",
    ),
    "counter.error.wrong_card": (
        "残高を表示したお客様のカードではありません。何も処理していません",
        "This is not the card of the customer whose points were shown. Nothing was charged",
    ),
    "counter.error.holder_binding_expired": (
        "時間が経ちすぎました。もう一度カードをかざして残高を確認してください",
        "Too much time has passed. Tap the card again to see the points",
    ),
    "counter.error.invalid_holder_binding": (
        "お客様の確認ができません。カードをかざして最初からやり直してください",
        "The customer could not be checked. Start again by tapping the card",
    ),
    "counter.error.challenge_used": (
        "このカードの読み取りはすでに使われました。もう一度かざしてください",
        "This card reading was used already. Tap the card again",
    ),
    "counter.error.challenge_expired": (
        "カードの読み取りから時間が経ちすぎました。もう一度かざしてください",
        "The card was read too long ago. Tap it again",
    ),
}
