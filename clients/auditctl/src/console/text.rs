//! The console's words, in Vietnamese (the default) and English.

/// The reader's language, from the `lt_lang` cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The text for a key; the key itself when there is none (a mistake a test catches).
    pub fn t(self, key: &str) -> &str {
        let Some((vi, en)) = WORDS.iter().find(|(k, _, _)| *k == key).map(|w| (w.1, w.2)) else {
            return key;
        };
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}

/// (key, Vietnamese, English).
const WORDS: &[(&str, &str, &str)] = &[
    (
        "title",
        "Bảng điều khiển kiểm tra nhật ký",
        "Audit review console",
    ),
    ("nav.search", "Tra cứu", "Search"),
    ("nav.report", "Dấu hiệu lạm dụng", "Misuse report"),
    ("nav.verify", "Kiểm tra chuỗi", "Chain verification"),
    ("nav.logout", "Đăng xuất", "Sign out"),
    ("signed_in", "Đang đăng nhập", "Signed in as"),
    ("unit", "Đơn vị", "Unit"),
    ("login.title", "Đăng nhập", "Sign in"),
    (
        "login.intro",
        "Dán mã truy cập (token) của kiểm tra viên. Mã được giữ trong cookie của phiên này và gửi kèm mỗi yêu cầu tới cổng; cổng quyết định bạn được xem gì.",
        "Paste your auditor token. It is kept in this session's cookie and sent with every request to the gateway, which decides what you may see.",
    ),
    ("login.token", "Mã truy cập", "Token"),
    ("login.submit", "Đăng nhập", "Sign in"),
    (
        "login.dev",
        "Môi trường phát triển: đăng nhập bằng cán bộ mẫu của đơn vị này",
        "Development environment: sign in as a sample officer of this unit",
    ),
    ("search.title", "Tra cứu nhật ký", "Search the trail"),
    ("search.personal_id", "Số định danh cá nhân", "Personal ID"),
    (
        "search.personal_id.hint",
        "Cổng đổi số định danh thành bí danh; số không được lưu ở đâu.",
        "The gateway turns it into the pseudonym; the number is stored nowhere.",
    ),
    ("search.officer", "Mã cán bộ", "Officer"),
    ("search.unit", "Mã đơn vị", "Unit code"),
    ("search.procedure", "Mã thủ tục", "Procedure"),
    ("search.outcome", "Kết quả", "Outcome"),
    ("search.reason", "Lý do từ chối", "Refusal reason"),
    ("search.from", "Từ (giờ Việt Nam)", "From (Vietnam time)"),
    ("search.to", "Đến (không gồm)", "Until (exclusive)"),
    ("search.submit", "Tìm", "Search"),
    ("search.size", "Số bản ghi mỗi trang", "Records per page"),
    ("search.csv", "Tải CSV", "Download CSV"),
    ("search.next", "Trang sau", "Next page"),
    (
        "search.none",
        "Không có bản ghi nào khớp.",
        "No record matches.",
    ),
    ("search.page", "Bản ghi", "Records"),
    ("search.last_page", "Trang cuối.", "Last page."),
    ("outcome.any", "Tất cả", "Any"),
    ("outcome.served", "Đã phục vụ", "Served"),
    ("outcome.refused", "Bị từ chối", "Refused"),
    ("col.seq", "STT", "Seq"),
    ("col.time", "Thời gian (UTC+7)", "Time (UTC+7)"),
    ("col.officer", "Cán bộ", "Officer"),
    ("col.unit", "Đơn vị", "Unit"),
    ("col.method", "Thao tác", "Operation"),
    ("col.procedure", "Thủ tục", "Procedure"),
    ("col.citizen", "Công dân", "Citizen"),
    ("col.outcome", "Kết quả", "Outcome"),
    ("col.fields", "Trường đã cung cấp", "Fields disclosed"),
    ("record.title", "Bản ghi", "Record"),
    ("record.prev", "Bản ghi trước", "Previous record"),
    ("record.next", "Bản ghi sau", "Next record"),
    (
        "record.missing",
        "Không có bản ghi này trong phạm vi của bạn (hoặc chưa có).",
        "There is no such record within your scope (or not yet).",
    ),
    ("record.chain", "Vị trí trong chuỗi", "Place in the chain"),
    ("record.print", "In biên bản", "Print finding"),
    ("record.finding", "Biên bản kiểm tra", "Review finding"),
    ("record.receipt", "Biên nhận", "Receipt"),
    (
        "verify.title",
        "Kiểm tra tính toàn vẹn của chuỗi",
        "Chain integrity",
    ),
    ("verify.checked", "Bản ghi đã kiểm tra", "Records checked"),
    (
        "verify.signatures",
        "Chữ ký điểm kiểm tra đã kiểm tra",
        "Checkpoint signatures checked",
    ),
    ("report.title", "Dấu hiệu lạm dụng", "Misuse signals"),
    (
        "report.intro",
        "Dấu hiệu, không phải kết luận: mỗi dấu hiệu chỉ ra các bản ghi cần đọc.",
        "Signals, not verdicts: each names the records to read.",
    ),
    ("report.days", "Số ngày gần nhất", "Last days"),
    ("report.none", "Không có dấu hiệu nào.", "No signal."),
    ("report.records", "bản ghi đã xét", "records examined"),
    (
        "report.truncated",
        "Chỉ xét phần đầu; thu hẹp khoảng thời gian.",
        "Only the first part was examined; narrow the period.",
    ),
    ("report.evidence", "Bằng chứng", "Evidence"),
    (
        "report.per_hour",
        "Yêu cầu theo giờ trong ngày, theo đơn vị",
        "Requests per hour of day, by unit",
    ),
    (
        "report.by_reason",
        "Từ chối theo lý do",
        "Refusals by reason",
    ),
    (
        "report.officer_vs_unit",
        "Hoạt động của cán bộ so với mức thường của đơn vị (trung bình mỗi cán bộ)",
        "The officer's activity against their unit's usual pattern (mean per officer)",
    ),
    ("report.officer", "Xem cán bộ", "Show officer"),
    ("report.unit_mean", "trung bình đơn vị", "unit mean"),
    (
        "kind.shared-account",
        "Dùng chung tài khoản",
        "Shared account",
    ),
    (
        "kind.dormant-account",
        "Tài khoản không hoạt động",
        "Dormant account",
    ),
    (
        "kind.no-dossier",
        "Tra cứu không có hồ sơ",
        "Lookup without a dossier",
    ),
    ("kind.off-hours", "Ngoài giờ làm việc", "Off-hours use"),
    (
        "kind.high-volume",
        "Khối lượng bất thường",
        "Unusual volume",
    ),
    ("kind.refusal-burst", "Từ chối dồn dập", "Refusal burst"),
    (
        "kind.verification-probing",
        "Xác thực lặp lại một công dân",
        "Repeated verification of one citizen",
    ),
    (
        "refused.title",
        "Cổng từ chối yêu cầu",
        "The gateway refused the request",
    ),
    (
        "export.title",
        "Xuất đoạn nhật ký có chữ ký",
        "Export a signed range",
    ),
    (
        "export.intro",
        "Một đoạn mang theo bản ghi của mọi đơn vị trong đó, nên chỉ kiểm tra viên cấp quốc gia được xuất.",
        "A range carries every unit's records in it, so only national auditors may export one.",
    ),
    ("export.from", "Từ số thứ tự", "From sequence"),
    (
        "export.to",
        "Đến số thứ tự (0: hết)",
        "To sequence (0: the end)",
    ),
    ("export.submit", "Xuất", "Export"),
    (
        "citizen.title",
        "Lịch sử truy cập dữ liệu của tôi",
        "Who accessed my data",
    ),
    (
        "citizen.intro",
        "Mọi lần một cơ quan tra cứu, xác thực hoặc dùng dữ liệu của bạn qua cổng kết nối: khi nào, cơ quan nào, thủ tục nào, những trường nào, được phục vụ hay bị từ chối.",
        "Every time an agency looked up, verified or used your data through the gateway: when, which agency, which procedure, which fields, served or refused.",
    ),
    (
        "citizen.login",
        "Đăng nhập bằng mã truy cập công dân (do VNeID cấp sau khi xác thực bạn).",
        "Sign in with your citizen token (issued by VNeID once it has identified you).",
    ),
    (
        "citizen.dev",
        "Môi trường phát triển: nhận mã công dân cho số định danh",
        "Development environment: get a citizen token for a personal ID",
    ),
    (
        "citizen.none",
        "Chưa có cơ quan nào truy cập dữ liệu của bạn.",
        "No agency has accessed your data.",
    ),
    ("citizen.agency", "Cơ quan", "Agency"),
    ("citizen.receipt", "Biên nhận", "Receipt"),
    ("citizen.served", "Đã cung cấp", "Served"),
    ("citizen.refused", "Bị từ chối", "Refused"),
    ("citizen.logout", "Thoát", "Sign out"),
];
