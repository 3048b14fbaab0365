//! Name and attribute tables for the generator, with the weights that make the population
//! realistic: family-name shares from published Vietnamese surname statistics, the 54 ethnic
//! groups with their 2019 census shares, religions, and given names that shift with the decade.

use rand::Rng;

/// A table of values and relative weights, sampled by cumulative weight.
pub struct Weighted<T: 'static> {
    items: &'static [(T, u32)],
    total: u32,
}

impl<T: Copy> Weighted<T> {
    pub const fn new(items: &'static [(T, u32)]) -> Self {
        let mut total = 0;
        let mut i = 0;
        while i < items.len() {
            total += items[i].1;
            i += 1;
        }
        Self { items, total }
    }

    pub fn pick(&self, rng: &mut impl Rng) -> T {
        let mut x = rng.random_range(0..self.total);
        for (item, w) in self.items {
            if x < *w {
                return *item;
            }
            x -= w;
        }
        self.items[self.items.len() - 1].0
    }
}

/// Family names, weights in tenths of a percent of the population.
pub static FAMILY_NAMES: Weighted<&str> = Weighted::new(&[
    ("Nguyễn", 380),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 71),
    ("Hoàng", 31),
    ("Huỳnh", 20),
    ("Phan", 45),
    ("Vũ", 20),
    ("Võ", 19),
    ("Đặng", 21),
    ("Bùi", 20),
    ("Đỗ", 14),
    ("Hồ", 13),
    ("Ngô", 13),
    ("Dương", 10),
    ("Lý", 5),
    ("Đào", 4),
    ("Đoàn", 4),
    ("Vương", 2),
    ("Trịnh", 4),
    ("Đinh", 4),
    ("Lâm", 3),
    ("Mai", 3),
    ("Trương", 3),
    ("Tô", 2),
    ("Hà", 3),
    ("Lương", 3),
    ("Tạ", 2),
    ("Cao", 2),
    ("Chu", 2),
    ("Thái", 2),
    ("Kiều", 1),
    ("Lưu", 2),
    ("Quách", 1),
    ("Tăng", 1),
    ("Thân", 1),
    ("Khổng", 1),
    ("Tôn", 1),
]);

/// Middle names for men born before 1980 ("Văn" dominates), and after.
pub static MALE_MIDDLE_OLD: Weighted<&str> = Weighted::new(&[
    ("Văn", 60),
    ("Đức", 8),
    ("Hữu", 8),
    ("Đình", 7),
    ("Công", 6),
    ("Xuân", 4),
    ("Quang", 4),
    ("Ngọc", 3),
]);
pub static MALE_MIDDLE_NEW: Weighted<&str> = Weighted::new(&[
    ("Văn", 25),
    ("Minh", 14),
    ("Đức", 10),
    ("Quang", 8),
    ("Hoàng", 6),
    ("Gia", 8),
    ("Anh", 5),
    ("Thành", 5),
    ("Tuấn", 4),
    ("Hữu", 4),
    ("Bảo", 5),
    ("Nhật", 4),
    ("Trung", 2),
]);
/// Middle names for women born before 1980 ("Thị" dominates), and after.
pub static FEMALE_MIDDLE_OLD: Weighted<&str> = Weighted::new(&[
    ("Thị", 80),
    ("Ngọc", 6),
    ("Thu", 4),
    ("Thanh", 4),
    ("Kim", 3),
    ("Hồng", 3),
]);
pub static FEMALE_MIDDLE_NEW: Weighted<&str> = Weighted::new(&[
    ("Thị", 35),
    ("Ngọc", 10),
    ("Thu", 6),
    ("Thanh", 6),
    ("Phương", 6),
    ("Minh", 6),
    ("Bảo", 6),
    ("Khánh", 5),
    ("Hà", 4),
    ("Mai", 4),
    ("Thảo", 4),
    ("Diệu", 3),
    ("Thùy", 5),
]);

/// Given names, men.
pub static MALE_GIVEN: Weighted<&str> = Weighted::new(&[
    ("Anh", 40),
    ("Hùng", 30),
    ("Dũng", 28),
    ("Tuấn", 30),
    ("Minh", 30),
    ("Hải", 25),
    ("Nam", 25),
    ("Long", 22),
    ("Sơn", 22),
    ("Thắng", 18),
    ("Cường", 18),
    ("Hiếu", 15),
    ("Huy", 25),
    ("Khoa", 12),
    ("Phúc", 14),
    ("Quân", 14),
    ("Trung", 15),
    ("Tùng", 14),
    ("Việt", 12),
    ("Bình", 14),
    ("Đức", 18),
    ("Hoàng", 14),
    ("Kiên", 10),
    ("Lâm", 10),
    ("Phong", 12),
    ("Tâm", 10),
    ("Thành", 15),
    ("Toàn", 10),
    ("Vinh", 12),
    ("Hưng", 12),
    ("Khánh", 12),
    ("Đạt", 14),
    ("Bảo", 10),
    ("Duy", 12),
    ("Hà", 4),
    ("Hạ", 2),
    ("Thọ", 6),
    ("Lộc", 8),
    ("Tài", 8),
    ("Quý", 6),
    ("Nghĩa", 8),
    ("Trí", 8),
    ("Khôi", 8),
    ("Lực", 4),
]);

/// Given names, women.
pub static FEMALE_GIVEN: Weighted<&str> = Weighted::new(&[
    ("Anh", 35),
    ("Hương", 30),
    ("Lan", 25),
    ("Linh", 35),
    ("Mai", 25),
    ("Hoa", 25),
    ("Hằng", 22),
    ("Ngọc", 18),
    ("Nhung", 15),
    ("Phương", 22),
    ("Thảo", 25),
    ("Trang", 28),
    ("Thu", 15),
    ("Hạnh", 18),
    ("Huyền", 18),
    ("Yến", 15),
    ("Vân", 15),
    ("Hà", 20),
    ("Giang", 15),
    ("Dung", 14),
    ("Loan", 10),
    ("Nga", 14),
    ("Oanh", 10),
    ("Quỳnh", 14),
    ("Thủy", 16),
    ("Tuyết", 10),
    ("Uyên", 10),
    ("Vy", 12),
    ("Chi", 12),
    ("Diệp", 6),
    ("My", 10),
    ("Nhi", 12),
    ("Hiền", 14),
    ("Thư", 12),
    ("Ánh", 10),
    ("Nụ", 4),
    ("Tâm", 8),
]);

/// The 54 ethnic groups, weights per ten thousand (2019 census shares, small groups rounded up
/// to 1 so that every group appears in a large population).
pub static ETHNIC_GROUPS: Weighted<&str> = Weighted::new(&[
    ("Kinh", 8532),
    ("Tày", 190),
    ("Thái", 185),
    ("Mường", 154),
    ("H'Mông", 145),
    ("Khmer", 137),
    ("Nùng", 115),
    ("Dao", 93),
    ("Hoa", 78),
    ("Gia Rai", 53),
    ("Ê Đê", 41),
    ("Ba Na", 30),
    ("Sán Chay", 21),
    ("Chăm", 19),
    ("Cơ Ho", 21),
    ("Xơ Đăng", 22),
    ("Sán Dìu", 19),
    ("Hrê", 15),
    ("Ra Glai", 15),
    ("Mnông", 13),
    ("Thổ", 9),
    ("Xtiêng", 10),
    ("Khơ Mú", 9),
    ("Bru - Vân Kiều", 10),
    ("Cơ Tu", 8),
    ("Giáy", 7),
    ("Tà Ôi", 5),
    ("Mạ", 5),
    ("Giẻ Triêng", 7),
    ("Co", 4),
    ("Chơ Ro", 3),
    ("Xinh Mun", 3),
    ("Hà Nhì", 3),
    ("Chu Ru", 2),
    ("Lào", 2),
    ("La Chí", 2),
    ("Kháng", 2),
    ("Phù Lá", 1),
    ("La Hủ", 1),
    ("La Ha", 1),
    ("Pà Thẻn", 1),
    ("Lự", 1),
    ("Ngái", 1),
    ("Chứt", 1),
    ("Lô Lô", 1),
    ("Mảng", 1),
    ("Cơ Lao", 1),
    ("Bố Y", 1),
    ("Cống", 1),
    ("Si La", 1),
    ("Pu Péo", 1),
    ("Rơ Măm", 1),
    ("Brâu", 1),
    ("Ơ Đu", 1),
]);

/// Religions, weights per thousand (2019 census).
pub static RELIGIONS: Weighted<&str> = Weighted::new(&[
    ("Không", 862),
    ("Công giáo", 61),
    ("Phật giáo", 48),
    ("Tin lành", 10),
    ("Phật giáo Hòa Hảo", 10),
    ("Cao Đài", 6),
    ("Hồi giáo", 1),
    ("Khác", 2),
]);

/// Street names for urban wards.
pub static STREETS: &[&str] = &[
    "Trần Phú",
    "Lê Lợi",
    "Nguyễn Du",
    "Hai Bà Trưng",
    "Quang Trung",
    "Lý Thường Kiệt",
    "Phan Đình Phùng",
    "Nguyễn Huệ",
    "Hùng Vương",
    "Lê Duẩn",
    "Điện Biên Phủ",
    "Trần Hưng Đạo",
    "Nguyễn Trãi",
    "Hà Huy Tập",
    "Xuân Diệu",
    "Phan Bội Châu",
];

/// Mobile prefixes in use by the Vietnamese carriers.
pub static PHONE_PREFIXES: &[&str] = &[
    "032", "033", "034", "035", "036", "037", "038", "039", "070", "076", "077", "078", "079",
    "081", "082", "083", "084", "085", "086", "088", "089", "090", "091", "093", "094", "096",
    "097", "098", "056", "058", "059",
];

/// A given name for a gender and birth year.
pub fn full_name(
    rng: &mut impl Rng,
    family: &str,
    gender: lienthong_domain::Gender,
    year: i32,
) -> String {
    use lienthong_domain::Gender::*;
    let old = year < 1980;
    let (middle, given) = match (gender, old) {
        (Male, true) => (&MALE_MIDDLE_OLD, &MALE_GIVEN),
        (Male, false) => (&MALE_MIDDLE_NEW, &MALE_GIVEN),
        (Female, true) => (&FEMALE_MIDDLE_OLD, &FEMALE_GIVEN),
        (Female, false) => (&FEMALE_MIDDLE_NEW, &FEMALE_GIVEN),
    };
    let mut middle_name = middle.pick(rng);
    // Avoid "Hoàng Hoàng Hùng".
    if middle_name == family {
        middle_name = middle.pick(rng);
    }
    let mut given_name = given.pick(rng);
    // Avoid "Nguyễn Minh Minh".
    if given_name == middle_name {
        given_name = given.pick(rng);
    }
    // Younger people more often carry two middle names ("Nguyễn Ngọc Bảo Anh").
    if !old && rng.random_bool(0.15) {
        let second = middle.pick(rng);
        if second != middle_name && second != given_name && second != "Văn" && second != "Thị" {
            return format!("{family} {middle_name} {second} {given_name}");
        }
    }
    format!("{family} {middle_name} {given_name}")
}

/// The pre-2025 provinces' populations at the 2019 census, in thousands: a family cluster is
/// from a province in proportion to its people.
pub static PROVINCE_POPULATION: Weighted<u16> = Weighted::new(&[
    (1, 8054),
    (2, 854),
    (4, 530),
    (6, 314),
    (8, 785),
    (10, 731),
    (11, 599),
    (12, 460),
    (14, 1248),
    (15, 821),
    (17, 855),
    (19, 1287),
    (20, 782),
    (22, 1320),
    (24, 1804),
    (25, 1464),
    (26, 1152),
    (27, 1369),
    (30, 1893),
    (31, 2029),
    (33, 1253),
    (34, 1861),
    (35, 853),
    (36, 1781),
    (37, 983),
    (38, 3641),
    (40, 3328),
    (42, 1289),
    (44, 896),
    (45, 633),
    (46, 1129),
    (48, 1135),
    (49, 1496),
    (51, 1232),
    (52, 1487),
    (54, 873),
    (56, 1232),
    (58, 591),
    (60, 1231),
    (62, 541),
    (64, 1514),
    (66, 1870),
    (67, 623),
    (68, 1297),
    (70, 995),
    (72, 1170),
    (74, 2456),
    (75, 3097),
    (77, 1149),
    (79, 8993),
    (80, 1689),
    (82, 1765),
    (83, 1289),
    (84, 1010),
    (86, 1023),
    (87, 1600),
    (89, 1908),
    (91, 1723),
    (92, 1236),
    (93, 733),
    (94, 1199),
    (95, 907),
    (96, 1194),
]);

/// Ethnic groups by pre-2025 province, in percent, rounded from the 2019 census for the
/// provinces where minorities are a notable share; "Khác" stands for the province's smaller
/// groups and is drawn from the national table's minorities.
static ETHNIC_BY_PROVINCE: &[(u16, Weighted<&str>)] = &[
    (1, Weighted::new(&[("Kinh", 98), ("Mường", 1), ("Tày", 1)])),
    (
        2,
        Weighted::new(&[
            ("H'Mông", 33),
            ("Tày", 23),
            ("Dao", 15),
            ("Kinh", 13),
            ("Nùng", 9),
            ("Giáy", 2),
            ("Lô Lô", 1),
            ("Khác", 4),
        ]),
    ),
    (
        4,
        Weighted::new(&[
            ("Tày", 41),
            ("Nùng", 31),
            ("H'Mông", 11),
            ("Dao", 10),
            ("Kinh", 6),
            ("Khác", 1),
        ]),
    ),
    (
        6,
        Weighted::new(&[
            ("Tày", 52),
            ("Dao", 17),
            ("Kinh", 12),
            ("Nùng", 9),
            ("H'Mông", 7),
            ("Sán Chay", 3),
        ]),
    ),
    (
        8,
        Weighted::new(&[
            ("Kinh", 48),
            ("Tày", 25),
            ("Dao", 11),
            ("Sán Chay", 8),
            ("H'Mông", 3),
            ("Nùng", 2),
            ("Khác", 3),
        ]),
    ),
    (
        10,
        Weighted::new(&[
            ("Kinh", 35),
            ("H'Mông", 25),
            ("Tày", 15),
            ("Dao", 14),
            ("Giáy", 5),
            ("Nùng", 4),
            ("Khác", 2),
        ]),
    ),
    (
        11,
        Weighted::new(&[
            ("H'Mông", 37),
            ("Thái", 34),
            ("Kinh", 19),
            ("Khơ Mú", 3),
            ("Dao", 2),
            ("Hà Nhì", 1),
            ("Khác", 4),
        ]),
    ),
    (
        12,
        Weighted::new(&[
            ("H'Mông", 36),
            ("Thái", 32),
            ("Kinh", 16),
            ("Dao", 12),
            ("Hà Nhì", 2),
            ("Giáy", 1),
            ("Lự", 1),
        ]),
    ),
    (
        14,
        Weighted::new(&[
            ("Thái", 53),
            ("Kinh", 17),
            ("H'Mông", 17),
            ("Mường", 8),
            ("Dao", 2),
            ("Xinh Mun", 2),
            ("Khơ Mú", 1),
        ]),
    ),
    (
        15,
        Weighted::new(&[
            ("Kinh", 52),
            ("Tày", 19),
            ("Dao", 11),
            ("H'Mông", 11),
            ("Thái", 6),
            ("Khác", 1),
        ]),
    ),
    (
        17,
        Weighted::new(&[
            ("Mường", 63),
            ("Kinh", 28),
            ("Thái", 4),
            ("Tày", 3),
            ("Dao", 2),
        ]),
    ),
    (
        19,
        Weighted::new(&[
            ("Kinh", 72),
            ("Tày", 11),
            ("Nùng", 6),
            ("Sán Dìu", 4),
            ("Sán Chay", 3),
            ("Dao", 2),
            ("H'Mông", 1),
            ("Khác", 1),
        ]),
    ),
    (
        20,
        Weighted::new(&[
            ("Nùng", 42),
            ("Tày", 35),
            ("Kinh", 16),
            ("Dao", 4),
            ("Hoa", 1),
            ("Sán Chay", 2),
        ]),
    ),
    (
        22,
        Weighted::new(&[
            ("Kinh", 88),
            ("Dao", 4),
            ("Tày", 3),
            ("Sán Dìu", 2),
            ("Sán Chay", 1),
            ("Hoa", 1),
            ("Khác", 1),
        ]),
    ),
    (
        24,
        Weighted::new(&[
            ("Kinh", 88),
            ("Nùng", 4),
            ("Tày", 3),
            ("Sán Chay", 2),
            ("Sán Dìu", 2),
            ("Hoa", 1),
        ]),
    ),
    (
        25,
        Weighted::new(&[("Kinh", 85), ("Mường", 13), ("Dao", 1), ("Khác", 1)]),
    ),
    (37, Weighted::new(&[("Kinh", 98), ("Mường", 2)])),
    (
        38,
        Weighted::new(&[("Kinh", 84), ("Mường", 9), ("Thái", 6), ("Khác", 1)]),
    ),
    (
        40,
        Weighted::new(&[
            ("Kinh", 86),
            ("Thái", 10),
            ("Khơ Mú", 1),
            ("H'Mông", 1),
            ("Khác", 2),
        ]),
    ),
    (44, Weighted::new(&[("Kinh", 98), ("Bru - Vân Kiều", 2)])),
    (
        45,
        Weighted::new(&[("Kinh", 88), ("Bru - Vân Kiều", 9), ("Tà Ôi", 3)]),
    ),
    (
        46,
        Weighted::new(&[
            ("Kinh", 96),
            ("Tà Ôi", 2),
            ("Cơ Tu", 1),
            ("Bru - Vân Kiều", 1),
        ]),
    ),
    (
        49,
        Weighted::new(&[
            ("Kinh", 92),
            ("Cơ Tu", 3),
            ("Xơ Đăng", 3),
            ("Giẻ Triêng", 1),
            ("Khác", 1),
        ]),
    ),
    (
        51,
        Weighted::new(&[("Kinh", 87), ("Hrê", 10), ("Co", 2), ("Xơ Đăng", 1)]),
    ),
    (
        52,
        Weighted::new(&[("Kinh", 98), ("Ba Na", 1), ("Chăm", 1)]),
    ),
    (
        54,
        Weighted::new(&[("Kinh", 94), ("Ê Đê", 3), ("Chăm", 2), ("Ba Na", 1)]),
    ),
    (
        56,
        Weighted::new(&[("Kinh", 94), ("Ra Glai", 5), ("Khác", 1)]),
    ),
    (
        58,
        Weighted::new(&[("Kinh", 76), ("Chăm", 12), ("Ra Glai", 11), ("Khác", 1)]),
    ),
    (
        60,
        Weighted::new(&[
            ("Kinh", 93),
            ("Chăm", 3),
            ("Ra Glai", 2),
            ("Hoa", 1),
            ("Khác", 1),
        ]),
    ),
    (
        62,
        Weighted::new(&[
            ("Kinh", 46),
            ("Xơ Đăng", 25),
            ("Ba Na", 12),
            ("Giẻ Triêng", 7),
            ("Gia Rai", 4),
            ("Khác", 6),
        ]),
    ),
    (
        64,
        Weighted::new(&[("Kinh", 53), ("Gia Rai", 30), ("Ba Na", 13), ("Khác", 4)]),
    ),
    (
        66,
        Weighted::new(&[
            ("Kinh", 65),
            ("Ê Đê", 18),
            ("Nùng", 4),
            ("Tày", 3),
            ("Mnông", 2),
            ("H'Mông", 2),
            ("Dao", 2),
            ("Gia Rai", 1),
            ("Thái", 1),
            ("Khác", 2),
        ]),
    ),
    (
        67,
        Weighted::new(&[
            ("Kinh", 64),
            ("Mnông", 9),
            ("Nùng", 7),
            ("H'Mông", 6),
            ("Tày", 5),
            ("Dao", 4),
            ("Ê Đê", 2),
            ("Khác", 3),
        ]),
    ),
    (
        68,
        Weighted::new(&[
            ("Kinh", 75),
            ("Cơ Ho", 12),
            ("Mạ", 3),
            ("Chu Ru", 2),
            ("Tày", 2),
            ("Nùng", 2),
            ("Khác", 4),
        ]),
    ),
    (
        70,
        Weighted::new(&[
            ("Kinh", 82),
            ("Xtiêng", 9),
            ("Khmer", 2),
            ("Nùng", 2),
            ("Tày", 2),
            ("Mnông", 1),
            ("Khác", 2),
        ]),
    ),
    (
        72,
        Weighted::new(&[("Kinh", 98), ("Khmer", 1), ("Chăm", 1)]),
    ),
    (
        75,
        Weighted::new(&[
            ("Kinh", 92),
            ("Hoa", 3),
            ("Nùng", 2),
            ("Tày", 1),
            ("Chơ Ro", 1),
            ("Khác", 1),
        ]),
    ),
    (
        79,
        Weighted::new(&[
            ("Kinh", 93),
            ("Hoa", 4),
            ("Khmer", 1),
            ("Chăm", 1),
            ("Khác", 1),
        ]),
    ),
    (
        84,
        Weighted::new(&[("Kinh", 67), ("Khmer", 32), ("Hoa", 1)]),
    ),
    (86, Weighted::new(&[("Kinh", 98), ("Khmer", 2)])),
    (
        89,
        Weighted::new(&[("Kinh", 94), ("Khmer", 4), ("Chăm", 1), ("Hoa", 1)]),
    ),
    (
        91,
        Weighted::new(&[("Kinh", 85), ("Khmer", 12), ("Hoa", 3)]),
    ),
    (92, Weighted::new(&[("Kinh", 97), ("Khmer", 2), ("Hoa", 1)])),
    (93, Weighted::new(&[("Kinh", 97), ("Khmer", 2), ("Hoa", 1)])),
    (
        94,
        Weighted::new(&[("Kinh", 64), ("Khmer", 30), ("Hoa", 6)]),
    ),
    (95, Weighted::new(&[("Kinh", 89), ("Khmer", 8), ("Hoa", 3)])),
    (96, Weighted::new(&[("Kinh", 97), ("Khmer", 2), ("Hoa", 1)])),
];

/// Elsewhere (the lowland provinces), per thousand: Kinh, a few Hoa and Mường.
static ETHNIC_LOWLANDS: Weighted<&str> = Weighted::new(&[
    ("Kinh", 993),
    ("Hoa", 3),
    ("Mường", 2),
    ("Tày", 1),
    ("Khác", 1),
]);

/// The ethnic group of a family from a pre-2025 province.
pub fn ethnicity_in(rng: &mut impl Rng, province: u16) -> &'static str {
    let table = ETHNIC_BY_PROVINCE
        .iter()
        .find(|(p, _)| *p == province)
        .map_or(&ETHNIC_LOWLANDS, |(_, t)| t);
    match table.pick(rng) {
        // A smaller group of the province: one of the national table's minorities.
        "Khác" => loop {
            let g = ETHNIC_GROUPS.pick(rng);
            if g != "Kinh" {
                break g;
            }
        },
        g => g,
    }
}

/// How a group names its people, where it differs from the Kinh pattern (family name, middle
/// name, given name).
pub enum Naming {
    /// Family, middle and given names as the Kinh write them, with the group's own family names.
    KinhStyle(&'static [&'static str]),
    /// Family name, a middle name by gender, and given names of the group's own.
    Own {
        families: &'static [&'static str],
        male_middle: &'static [&'static str],
        female_middle: &'static [&'static str],
        male: &'static [&'static str],
        female: &'static [&'static str],
    },
    /// The Ê Đê and Gia Rai order: "Y" (men) or "H'" (women), the given name, then the family
    /// (clan) name.
    ClanLast {
        clans: &'static [&'static str],
        male: &'static [&'static str],
        female: &'static [&'static str],
    },
    /// The northern Central Highlands (Ba Na, Xơ Đăng, Giẻ Triêng…): "A" for men and "Y" for
    /// women before a one-syllable name, often with no family name.
    Prefixed {
        male: &'static [&'static str],
        female: &'static [&'static str],
    },
}

/// The naming of a group; None for the Kinh pattern with the national family names.
pub fn naming(ethnicity: &str) -> Option<Naming> {
    Some(match ethnicity {
        "Hoa" => Naming::KinhStyle(&[
            "Lâm", "Lý", "Quách", "Trương", "Hứa", "Mã", "Châu", "Tăng", "La", "Diệp",
        ]),
        "Tày" | "Nùng" | "Sán Chay" | "Sán Dìu" | "Giáy" => Naming::KinhStyle(&[
            "Hoàng", "Nông", "Lường", "Lục", "Đàm", "Bế", "Triệu", "Hà", "Ma", "Lương", "Vi", "Sầm",
        ]),
        "Mường" => Naming::KinhStyle(&["Bùi", "Đinh", "Quách", "Hà", "Xa", "Cao", "Bạch"]),
        "Chăm" => Naming::KinhStyle(&["Đàng", "Thuận", "Trượng", "Lưu", "Quảng", "Châu", "Bá"]),
        "Thái" => Naming::Own {
            families: &["Lò", "Cầm", "Lường", "Quàng", "Vi", "Hà", "Tòng", "Lù"],
            male_middle: &["Văn"],
            female_middle: &["Thị"],
            male: &[
                "Hặc", "Piếng", "Xôm", "Muôn", "Khăm", "Thoan", "Ngọc", "Sương", "Chiến",
            ],
            female: &["Ún", "Xuân", "Pặn", "Ên", "Hoa", "Lả", "Thoa", "Lún", "Hom"],
        },
        "H'Mông" => Naming::Own {
            families: &[
                "Giàng", "Vàng", "Thào", "Sùng", "Lầu", "Hầu", "Mùa", "Vừ", "Cứ", "Hạng", "Lý",
            ],
            male_middle: &["A", "Seo", "Mí", "Chúa"],
            female_middle: &["Thị"],
            male: &[
                "Páo", "Chứ", "Sử", "Lử", "Dế", "Pó", "Chính", "Súa", "Sình", "Tủa",
            ],
            female: &[
                "Mỷ", "Dợ", "Say", "Dung", "Mai", "Sua", "Chở", "Pằng", "Già",
            ],
        },
        "Dao" => Naming::Own {
            families: &["Triệu", "Bàn", "Đặng", "Lý", "Chảo", "Phùng", "Tẩn"],
            male_middle: &["Văn", "Tài", "Láo", "Tiến"],
            female_middle: &["Thị", "Mùi"],
            male: &["Vần", "Chàn", "Tả", "Sành", "Quáng", "Phin", "Kiềm"],
            female: &["Mẩy", "Xiêm", "Chang", "Nái", "Phây", "Nhất"],
        },
        "Khmer" => Naming::Own {
            families: &["Thạch", "Sơn", "Danh", "Kim", "Lâm", "Trà", "Chau"],
            male_middle: &["Sô", "Sa", "Ra", "Sóc", "Pích"],
            female_middle: &["Thị", "Thị Sa", "Néang"],
            male: &["Phi", "Rươn", "Khum", "Ni", "Pho", "Sang", "Rinh", "Đa"],
            female: &["Rết", "Ly", "Phiên", "Chanh Đa", "Ca Ri", "Mơ", "Thia"],
        },
        "Ê Đê" | "Gia Rai" | "Mnông" | "Ra Glai" | "Chu Ru" => Naming::ClanLast {
            clans: match ethnicity {
                "Gia Rai" => &["Rơ Châm", "Ksor", "Siu", "Rơ Mah", "Kpă", "Nay", "Puih"],
                "Ra Glai" | "Chu Ru" => &["Pi Năng", "Chamaléa", "Katơr", "Mang", "Bo Bo"],
                _ => &["Niê", "Êban", "Mlô", "Byă", "Ktla", "Adrơng", "Hđơk"],
            },
            male: &["Blang", "Ngông", "Thuột", "Kông", "Đhăm", "Sim", "Khuê"],
            female: &["Xíu", "Wen", "Linh", "Mai", "Blinh", "Hen", "Nhung"],
        },
        "Ba Na" | "Xơ Đăng" | "Giẻ Triêng" | "Hrê" | "Co" | "Cơ Tu" | "Tà Ôi"
        | "Bru - Vân Kiều" | "Xtiêng" | "Cơ Ho" | "Mạ" | "Brâu" | "Rơ Măm" => {
            Naming::Prefixed {
                male: &["Thút", "Blưm", "Hlai", "Nhong", "Pố", "Đinh", "Sang", "Tơ"],
                female: &["Nhé", "Blai", "Hoa", "Lan", "Bia", "Mi", "Hơ"],
            }
        }
        _ => return None,
    })
}

/// A family (or clan) name for a family of a group: the group's own, or the national table's.
/// Empty for groups whose names carry none.
pub fn family_of(rng: &mut impl Rng, ethnicity: &str) -> &'static str {
    use rand::seq::IndexedRandom;
    let one = |rng: &mut _, list: &[&'static str]| list.choose(rng).copied().unwrap_or("");
    match naming(ethnicity) {
        None => FAMILY_NAMES.pick(rng),
        Some(Naming::KinhStyle(families)) => one(rng, families),
        Some(Naming::Own { families, .. }) => one(rng, families),
        Some(Naming::ClanLast { clans, .. }) => one(rng, clans),
        Some(Naming::Prefixed { .. }) => "",
    }
}

/// A full name for someone of a group, with the family name from [`family_of`].
pub fn full_name_of(
    rng: &mut impl Rng,
    ethnicity: &str,
    family: &str,
    gender: lienthong_domain::Gender,
    year: i32,
) -> String {
    use rand::seq::IndexedRandom;
    let one = |rng: &mut _, list: &[&'static str]| list.choose(rng).copied().unwrap_or("A");
    let male = gender == lienthong_domain::Gender::Male;
    match naming(ethnicity) {
        None | Some(Naming::KinhStyle(_)) => full_name(rng, family, gender, year),
        Some(Naming::Own {
            male_middle,
            female_middle,
            male: m,
            female: f,
            ..
        }) => {
            let (middle, given) = if male {
                (one(rng, male_middle), one(rng, m))
            } else {
                (one(rng, female_middle), one(rng, f))
            };
            format!("{family} {middle} {given}")
        }
        Some(Naming::ClanLast {
            male: m, female: f, ..
        }) => {
            if male {
                format!("Y {} {family}", one(rng, m))
            } else {
                format!("H'{} {family}", one(rng, f))
            }
        }
        Some(Naming::Prefixed { male: m, female: f }) => {
            if male {
                format!("A {}", one(rng, m))
            } else {
                format!("Y {}", one(rng, f))
            }
        }
    }
}
