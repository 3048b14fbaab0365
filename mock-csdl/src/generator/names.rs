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
    let middle_name = middle.pick(rng);
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
