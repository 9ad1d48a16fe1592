"""The 47 prefectures: JIS X 0401 code, names in Japanese and English, and a place on a tile
grid map of Japan (a cartogram: one equal tile each, roughly where the prefecture lies)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prefecture:
    code: str  # "01" … "47"
    name: str  # 東京都
    short: str  # 東京 (for a map tile)
    name_en: str
    column: int
    row: int


_DATA = (
    ("01", "北海道", "北海道", "Hokkaido", 12, 0),
    ("02", "青森県", "青森", "Aomori", 12, 1),
    ("03", "岩手県", "岩手", "Iwate", 12, 2),
    ("04", "宮城県", "宮城", "Miyagi", 12, 3),
    ("05", "秋田県", "秋田", "Akita", 11, 2),
    ("06", "山形県", "山形", "Yamagata", 11, 3),
    ("07", "福島県", "福島", "Fukushima", 11, 4),
    ("08", "茨城県", "茨城", "Ibaraki", 12, 5),
    ("09", "栃木県", "栃木", "Tochigi", 11, 5),
    ("10", "群馬県", "群馬", "Gunma", 10, 5),
    ("11", "埼玉県", "埼玉", "Saitama", 10, 6),
    ("12", "千葉県", "千葉", "Chiba", 12, 6),
    ("13", "東京都", "東京", "Tokyo", 11, 6),
    ("14", "神奈川県", "神奈川", "Kanagawa", 10, 7),
    ("15", "新潟県", "新潟", "Niigata", 10, 4),
    ("16", "富山県", "富山", "Toyama", 9, 4),
    ("17", "石川県", "石川", "Ishikawa", 8, 4),
    ("18", "福井県", "福井", "Fukui", 7, 5),
    ("19", "山梨県", "山梨", "Yamanashi", 9, 6),
    ("20", "長野県", "長野", "Nagano", 9, 5),
    ("21", "岐阜県", "岐阜", "Gifu", 8, 5),
    ("22", "静岡県", "静岡", "Shizuoka", 9, 7),
    ("23", "愛知県", "愛知", "Aichi", 8, 6),
    ("24", "三重県", "三重", "Mie", 7, 7),
    ("25", "滋賀県", "滋賀", "Shiga", 7, 6),
    ("26", "京都府", "京都", "Kyoto", 6, 6),
    ("27", "大阪府", "大阪", "Osaka", 5, 7),
    ("28", "兵庫県", "兵庫", "Hyogo", 5, 6),
    ("29", "奈良県", "奈良", "Nara", 6, 7),
    ("30", "和歌山県", "和歌山", "Wakayama", 6, 8),
    ("31", "鳥取県", "鳥取", "Tottori", 4, 6),
    ("32", "島根県", "島根", "Shimane", 3, 6),
    ("33", "岡山県", "岡山", "Okayama", 4, 7),
    ("34", "広島県", "広島", "Hiroshima", 3, 7),
    ("35", "山口県", "山口", "Yamaguchi", 2, 7),
    ("36", "徳島県", "徳島", "Tokushima", 4, 9),
    ("37", "香川県", "香川", "Kagawa", 4, 8),
    ("38", "愛媛県", "愛媛", "Ehime", 3, 8),
    ("39", "高知県", "高知", "Kochi", 3, 9),
    ("40", "福岡県", "福岡", "Fukuoka", 1, 8),
    ("41", "佐賀県", "佐賀", "Saga", 0, 8),
    ("42", "長崎県", "長崎", "Nagasaki", 0, 9),
    ("43", "熊本県", "熊本", "Kumamoto", 1, 9),
    ("44", "大分県", "大分", "Oita", 2, 8),
    ("45", "宮崎県", "宮崎", "Miyazaki", 2, 9),
    ("46", "鹿児島県", "鹿児島", "Kagoshima", 1, 10),
    ("47", "沖縄県", "沖縄", "Okinawa", 0, 12),
)

PREFECTURES: tuple[Prefecture, ...] = tuple(Prefecture(*row) for row in _DATA)
BY_CODE: dict[str, Prefecture] = {p.code: p for p in PREFECTURES}
