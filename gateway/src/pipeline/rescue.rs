//! Every way the gateway refuses or fails, as one typed enum, and the one function that turns it
//! into a gRPC status: code, English message, google.rpc details and a Vietnamese
//! LocalizedMessage. Nothing internal leaks: unknown failures become INTERNAL with a plain text.

use std::time::Duration;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The ErrorInfo domain of the gateway's reasons.
pub const DOMAIN: &str = "lienthong.gov.vn";

/// Which rate limit tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Officer,
    Unit,
    Global,
    Batch,
    /// Calls without a client certificate, per peer address.
    Peer,
    /// Claims on one field of one citizen by one officer in one day.
    Verification,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Officer => "officer",
            LimitKind::Unit => "unit",
            LimitKind::Global => "global",
            LimitKind::Batch => "batch",
            LimitKind::Peer => "peer",
            LimitKind::Verification => "verification",
        }
    }
}

/// What ended a call before its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The caller's deadline (grpc-timeout) passed.
    ClientDeadline,
    /// The caller reset the stream or closed the connection.
    ClientCancelled,
    /// The gateway's own request timeout passed.
    RequestTimeout,
}

/// A refusal or failure, with what the caller needs to know to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The TLS handshake failed or never finished: no request was made, nothing is sent; the
    /// failure is recorded at the door.
    #[error("the TLS handshake failed: {detail}")]
    TlsHandshake { timed_out: bool, detail: String },
    #[error("no client certificate was presented")]
    NoClientCertificate,
    #[error("the client certificate cannot be used: {0}")]
    BadClientCertificate(String),
    #[error("unit {0} is not registered with this gateway")]
    UnknownUnit(String),
    #[error("the client certificate of unit {unit} has been revoked")]
    CertificateRevoked { unit: String, fingerprint: String },
    #[error("no bearer token")]
    MissingToken,
    #[error("the bearer token is invalid: {0}")]
    BadToken(String),
    #[error("the bearer token has expired")]
    ExpiredToken,
    #[error("the bearer token is not valid yet")]
    TokenNotYetValid,
    #[error("the token is bound to another certificate")]
    CertificateBinding(String),
    #[error("token unit {token} differs from certificate unit {certificate}")]
    UnitMismatch { token: String, certificate: String },
    #[error("unit {unit} is not approved: {detail}")]
    UnitNotApproved {
        unit: String,
        detail: String,
        detail_vi: String,
    },
    #[error("procedure {procedure} is not allowed for unit {unit}")]
    ProcedureNotAllowed { procedure: String, unit: String },
    #[error("procedure {0} is not in the catalog")]
    UnknownProcedure(String),
    #[error("procedure {procedure} does not allow roles {roles}")]
    RoleNotAllowed { procedure: String, roles: String },
    #[error("procedure {procedure} does not allow fields {fields}")]
    FieldNotAllowed { procedure: String, fields: String },
    #[error("procedure {0} does not allow household access")]
    HouseholdNotAllowed(String),
    #[error("unit {0} may not verify in bulk")]
    BulkNotAllowed(String),
    /// The consent token of the citizen-consent channel cannot be used.
    #[error("the consent token cannot be used: {0}")]
    Consent(String),
    /// The citizen's VNeID account cannot consent (not level 2).
    #[error("the citizen cannot consent: {detail}")]
    ConsentNotPossible { detail: String, detail_vi: String },
    #[error("outside the auditor's scope: {0}")]
    OutsideAuditScope(String),
    #[error("the audit trail cannot be read past byte {offset}: {problem}")]
    TrailUnreadable { offset: u64, problem: String },
    #[error("rate limit {kind:?} exceeded")]
    RateLimited {
        kind: LimitKind,
        subject: String,
        retry_after: Duration,
    },
    #[error("the batch exceeds {max} items")]
    BatchTooLarge { max: u32 },
    #[error("invalid argument: {0:?}")]
    InvalidArgument(Vec<(String, String)>),
    #[error("no citizen with that number")]
    CitizenNotFound,
    #[error("no update of this unit has that id")]
    UpdateNotFound,
    #[error("no bundle case with that id")]
    CaseNotFound,
    #[error("the bundle step is not ready: {detail}")]
    StepNotReady { detail: String, detail_vi: String },
    #[error("the population database is unavailable: {0}")]
    UpstreamUnavailable(String),
    #[error("the population database did not answer in time")]
    UpstreamTimeout,
    #[error("the population database is failing; calls are paused")]
    CircuitOpen { retry_after: Duration },
    /// Too many calls in flight to the database: the unit's share, or all of them.
    #[error("too many calls in flight to the population database")]
    UpstreamBusy { scope: BusyScope, limit: u32 },
    #[error("the audit trail cannot be written")]
    AuditUnavailable,
    /// The fleet's shared rate limiter (Redis) cannot be reached and the policy is
    /// `fail_closed`.
    #[error("the shared rate limiter is unavailable")]
    LimiterUnavailable { retry_after: Duration },
    /// A query of every replica, on a gateway without a central audit store.
    #[error("no central audit store is configured")]
    CentralNotConfigured,
    /// The central audit store did not answer.
    #[error("the central audit store is unavailable")]
    CentralUnavailable,
    #[error("the gateway is shutting down")]
    ShuttingDown { answered: u32 },
    /// A request larger than the gateway accepts (`max_message_bytes`).
    #[error("the request is larger than {limit} bytes")]
    MessageTooLarge { limit: usize },
    /// An HTTP/JSON request whose body is not the operation's request in JSON.
    #[error("{0}")]
    BadJson(String),
    /// The call ended before its reply. Never sent (nobody is listening); recorded.
    #[error("the call ended before its reply")]
    CallAbandoned { by: CallEnd },
    /// A VerifyBatch stream sent no item for too long.
    #[error("the batch stream was idle")]
    BatchIdle { idle: Duration, answered: u32 },
    /// Refused by the gRPC transport before any step of the gateway ran (e.g. a malformed
    /// frame); the code and message are the transport's.
    #[error("refused by the gRPC transport: {message}")]
    Transport { code: Code, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Refusal {
    /// One invalid argument.
    pub fn invalid(field: impl Into<String>, description: impl ToString) -> Self {
        Refusal::InvalidArgument(vec![(field.into(), description.to_string())])
    }

    /// What the gRPC transport refused, as the gateway's refusal: an oversize message is
    /// RESOURCE_EXHAUSTED (the usual code), whatever tonic answered.
    pub fn from_transport(code: Code, message: &str, max_message_bytes: usize) -> Self {
        if code == Code::OutOfRange || message.contains("too large") {
            Refusal::MessageTooLarge {
                limit: max_message_bytes,
            }
        } else {
            Refusal::Transport {
                code,
                message: crate::audit::record::bound_str(message, 256),
            }
        }
    }

    /// The machine-readable reason, as in ErrorInfo and the audit trail.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TlsHandshake {
                timed_out: false, ..
            } => "TLS_HANDSHAKE_FAILED",
            Refusal::TlsHandshake {
                timed_out: true, ..
            } => "TLS_HANDSHAKE_TIMEOUT",
            Refusal::NoClientCertificate => "NO_CLIENT_CERTIFICATE",
            Refusal::BadClientCertificate(_) => "BAD_CLIENT_CERTIFICATE",
            Refusal::UnknownUnit(_) => "UNKNOWN_UNIT",
            Refusal::CertificateRevoked { .. } => "CERTIFICATE_REVOKED",
            Refusal::MissingToken => "MISSING_TOKEN",
            Refusal::BadToken(_) => "BAD_TOKEN",
            Refusal::ExpiredToken => "TOKEN_EXPIRED",
            Refusal::TokenNotYetValid => "TOKEN_NOT_YET_VALID",
            Refusal::CertificateBinding(_) => "TOKEN_CERTIFICATE_MISMATCH",
            Refusal::UnitMismatch { .. } => "UNIT_MISMATCH",
            Refusal::UnitNotApproved { .. } => "UNIT_NOT_APPROVED",
            Refusal::ProcedureNotAllowed { .. } => "PROCEDURE_NOT_ALLOWED",
            Refusal::UnknownProcedure(_) => "UNKNOWN_PROCEDURE",
            Refusal::RoleNotAllowed { .. } => "ROLE_NOT_ALLOWED",
            Refusal::FieldNotAllowed { .. } => "FIELD_NOT_ALLOWED",
            Refusal::HouseholdNotAllowed(_) => "HOUSEHOLD_NOT_ALLOWED",
            Refusal::BulkNotAllowed(_) => "BULK_NOT_ALLOWED",
            Refusal::Consent(_) => "CONSENT_INVALID",
            Refusal::ConsentNotPossible { .. } => "CONSENT_NOT_POSSIBLE",
            Refusal::OutsideAuditScope(_) => "AUDIT_SCOPE",
            Refusal::TrailUnreadable { .. } => "TRAIL_UNREADABLE",
            Refusal::RateLimited { .. } => "RATE_LIMITED",
            Refusal::BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            Refusal::InvalidArgument(_) => "INVALID_ARGUMENT",
            Refusal::CitizenNotFound => "CITIZEN_NOT_FOUND",
            Refusal::UpdateNotFound => "UPDATE_NOT_FOUND",
            Refusal::CaseNotFound => "CASE_NOT_FOUND",
            Refusal::StepNotReady { .. } => "STEP_NOT_READY",
            Refusal::UpstreamUnavailable(_) => "UPSTREAM_UNAVAILABLE",
            Refusal::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Refusal::CircuitOpen { .. } => "UPSTREAM_CIRCUIT_OPEN",
            Refusal::UpstreamBusy { .. } => "UPSTREAM_BUSY",
            Refusal::AuditUnavailable => "AUDIT_UNAVAILABLE",
            Refusal::LimiterUnavailable { .. } => "RATE_LIMITER_UNAVAILABLE",
            Refusal::CentralNotConfigured => "CENTRAL_STORE_NOT_CONFIGURED",
            Refusal::CentralUnavailable => "CENTRAL_STORE_UNAVAILABLE",
            Refusal::ShuttingDown { .. } => "SHUTTING_DOWN",
            Refusal::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            Refusal::BadJson(_) => "INVALID_JSON",
            Refusal::CallAbandoned {
                by: CallEnd::ClientDeadline,
            } => "CLIENT_DEADLINE",
            Refusal::CallAbandoned {
                by: CallEnd::ClientCancelled,
            } => "CLIENT_CANCELLED",
            Refusal::CallAbandoned {
                by: CallEnd::RequestTimeout,
            } => "REQUEST_TIMEOUT",
            Refusal::BatchIdle { .. } => "BATCH_IDLE",
            Refusal::Transport { .. } => "TRANSPORT",
            Refusal::Internal(_) => "INTERNAL",
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Refusal::TlsHandshake { .. }
            | Refusal::NoClientCertificate
            | Refusal::BadClientCertificate(_)
            | Refusal::UnknownUnit(_)
            | Refusal::CertificateRevoked { .. }
            | Refusal::MissingToken
            | Refusal::BadToken(_)
            | Refusal::ExpiredToken
            | Refusal::TokenNotYetValid
            | Refusal::CertificateBinding(_) => Code::Unauthenticated,
            Refusal::UnitMismatch { .. }
            | Refusal::UnitNotApproved { .. }
            | Refusal::ProcedureNotAllowed { .. }
            | Refusal::RoleNotAllowed { .. }
            | Refusal::FieldNotAllowed { .. }
            | Refusal::HouseholdNotAllowed(_)
            | Refusal::BulkNotAllowed(_)
            | Refusal::Consent(_)
            | Refusal::OutsideAuditScope(_) => Code::PermissionDenied,
            Refusal::RateLimited { .. }
            | Refusal::UpstreamBusy { .. }
            | Refusal::BatchTooLarge { .. }
            | Refusal::MessageTooLarge { .. } => Code::ResourceExhausted,
            Refusal::CallAbandoned {
                by: CallEnd::ClientCancelled,
            } => Code::Cancelled,
            Refusal::CallAbandoned { .. } | Refusal::BatchIdle { .. } => Code::DeadlineExceeded,
            Refusal::InvalidArgument(_) | Refusal::UnknownProcedure(_) | Refusal::BadJson(_) => {
                Code::InvalidArgument
            }
            Refusal::CitizenNotFound | Refusal::UpdateNotFound | Refusal::CaseNotFound => {
                Code::NotFound
            }
            Refusal::UpstreamUnavailable(_)
            | Refusal::CircuitOpen { .. }
            | Refusal::AuditUnavailable
            | Refusal::LimiterUnavailable { .. }
            | Refusal::CentralUnavailable
            | Refusal::ShuttingDown { .. } => Code::Unavailable,
            Refusal::CentralNotConfigured
            | Refusal::ConsentNotPossible { .. }
            | Refusal::StepNotReady { .. } => Code::FailedPrecondition,
            Refusal::UpstreamTimeout => Code::DeadlineExceeded,
            Refusal::TrailUnreadable { .. } => Code::DataLoss,
            Refusal::Transport { code, .. } => *code,
            Refusal::Internal(_) => Code::Internal,
        }
    }

    /// What went wrong and what to do, in English and in Vietnamese.
    pub fn messages(&self) -> (String, String) {
        match self {
            Refusal::TlsHandshake { detail, .. } => (
                format!("the TLS handshake failed ({detail}): connect with a certificate issued by the gateway's client CA, in date"),
                "bắt tay TLS không thành công: đề nghị kết nối bằng chứng thư số do CA của cổng cấp, còn hiệu lực".into(),
            ),
            Refusal::NoClientCertificate => (
                "no client certificate was presented: connect with mutual TLS using the certificate issued to your unit".into(),
                "chưa xuất trình chứng thư số máy khách: hãy kết nối mTLS bằng chứng thư số đã cấp cho đơn vị".into(),
            ),
            Refusal::BadClientCertificate(why) => (
                format!("the client certificate cannot be used: {why}; ask for a certificate naming your unit"),
                "chứng thư số máy khách không dùng được (chi tiết trong thông báo tiếng Anh): đề nghị cấp chứng thư số ghi mã đơn vị".into(),
            ),
            Refusal::UnknownUnit(unit) => (
                format!("unit {unit} is not registered with this gateway: ask the gateway operator to register the unit"),
                format!("đơn vị {unit} chưa được đăng ký kết nối với cổng: đề nghị liên hệ đơn vị vận hành để đăng ký"),
            ),
            Refusal::CertificateRevoked { unit, fingerprint } => (
                format!("the client certificate of unit {unit} (SHA-256 {fingerprint}) has been revoked: use the unit's new certificate, or ask the gateway operator to issue one"),
                format!("chứng thư số của đơn vị {unit} (SHA-256 {fingerprint}) đã bị thu hồi: đề nghị dùng chứng thư số mới của đơn vị hoặc liên hệ đơn vị vận hành để được cấp"),
            ),
            Refusal::MissingToken => (
                "no bearer token: send the officer's token in the `authorization: Bearer <token>` metadata".into(),
                "thiếu mã xác thực cán bộ: gửi token trong trường `authorization: Bearer <token>`".into(),
            ),
            Refusal::BadToken(why) => (
                format!("the officer's token is invalid: {why}; sign in again to get a new token"),
                "mã xác thực cán bộ không hợp lệ (chi tiết trong thông báo tiếng Anh): đề nghị đăng nhập lại để nhận token mới".into(),
            ),
            Refusal::ExpiredToken => (
                "the officer's token has expired: sign in again to get a new token".into(),
                "mã xác thực cán bộ đã hết hạn: đề nghị đăng nhập lại".into(),
            ),
            Refusal::TokenNotYetValid => (
                "the officer's token is not valid yet (nbf in the future): check the clocks of the issuer and the caller".into(),
                "mã xác thực cán bộ chưa đến thời điểm có hiệu lực: kiểm tra đồng hồ hệ thống".into(),
            ),
            Refusal::CertificateBinding(why) => (
                format!("the officer's token is bound to another certificate: {why}; get a token for this connection's certificate"),
                "mã xác thực cán bộ gắn với chứng thư số khác: đề nghị lấy token cho chứng thư số của kết nối này".into(),
            ),
            Refusal::UnitMismatch { token, certificate } => (
                format!("the officer's token is for unit {token} but the connection's certificate is unit {certificate}: an officer acts only through their own unit's system"),
                format!("token của cán bộ thuộc đơn vị {token} nhưng chứng thư số kết nối là của đơn vị {certificate}: cán bộ chỉ được truy cập qua hệ thống của đơn vị mình"),
            ),
            Refusal::UnitNotApproved { unit, detail, detail_vi } => (
                format!("unit {unit} is not approved for this gateway: {detail}"),
                format!("đơn vị {unit} chưa được phê duyệt kết nối: {detail_vi}"),
            ),
            Refusal::ProcedureNotAllowed { procedure, unit } => (
                format!("unit {unit} may not use procedure {procedure}: ask for the procedure to be added to the unit's connection approval"),
                format!("đơn vị {unit} không được phép sử dụng thủ tục {procedure}: đề nghị bổ sung thủ tục vào phạm vi kết nối của đơn vị"),
            ),
            Refusal::UnknownProcedure(p) => (
                format!("procedure {p} is not in the catalog: ListProcedures shows the codes this gateway knows"),
                format!("thủ tục {p} không có trong danh mục: dùng ListProcedures để xem danh sách mã thủ tục"),
            ),
            Refusal::RoleNotAllowed { procedure, roles } => (
                format!("procedure {procedure} may be used by the roles {roles} only; the officer has none of them"),
                format!("thủ tục {procedure} chỉ dành cho vai trò {roles}; cán bộ không có vai trò phù hợp"),
            ),
            Refusal::FieldNotAllowed { procedure, fields } => (
                format!("procedure {procedure} does not need {fields}: ask only for the procedure's fields (ListProcedures lists them)"),
                format!("thủ tục {procedure} không được khai thác trường {fields}: chỉ yêu cầu các trường thuộc phạm vi thủ tục"),
            ),
            Refusal::HouseholdNotAllowed(p) => (
                format!("procedure {p} does not give access to the household: use a residence procedure"),
                format!("thủ tục {p} không được khai thác thông tin hộ gia đình"),
            ),
            Refusal::Consent(why) => (
                format!("the consent token cannot be used: {why}"),
                "không sử dụng được mã đồng ý chia sẻ của công dân (chi tiết trong thông báo tiếng Anh): đề nghị công dân đăng nhập VNeID và đồng ý lại cho đúng thủ tục".into(),
            ),
            Refusal::ConsentNotPossible { detail, detail_vi } => (
                format!("the citizen cannot consent: {detail}"),
                format!("công dân chưa thể đồng ý chia sẻ dữ liệu: {detail_vi}"),
            ),
            Refusal::BulkNotAllowed(unit) => (
                format!("unit {unit} may not verify in bulk: its batch quota is zero"),
                format!("đơn vị {unit} không được phép đối chiếu dữ liệu theo lô"),
            ),
            Refusal::TrailUnreadable { offset, problem } => (
                format!("the audit trail cannot be read past byte {offset} ({problem}): what came before was sent; run `auditctl verify` on the trail and alert the gateway operator"),
                format!("không đọc được nhật ký truy cập từ byte {offset}: phần trước đó đã được gửi; đề nghị kiểm tra tính toàn vẹn nhật ký và báo đơn vị vận hành"),
            ),
            Refusal::OutsideAuditScope(what) => (
                format!("{what}: an auditor reads the records of the units in their unit's audit scope only; ask an auditor whose scope covers them"),
                "nằm ngoài phạm vi kiểm tra nhật ký của đơn vị: kiểm tra viên chỉ được xem nhật ký của các đơn vị thuộc phạm vi được giao; đề nghị liên hệ kiểm tra viên có thẩm quyền".into(),
            ),
            Refusal::RateLimited { kind, subject, retry_after } => (
                format!("the {} rate limit for {subject} is exhausted: retry in {} ms", kind.as_str(), retry_after.as_millis()),
                format!("vượt quá hạn mức truy vấn ({}) của {subject}: thử lại sau {} ms", kind_vi(*kind), retry_after.as_millis()),
            ),
            Refusal::BatchTooLarge { max } => (
                format!("the batch exceeds the unit's limit of {max} items per stream: split it into smaller batches"),
                format!("lô đối chiếu vượt quá {max} bản ghi cho phép: đề nghị chia nhỏ lô"),
            ),
            Refusal::InvalidArgument(v) => {
                let list = v.iter().map(|(f, d)| format!("{f}: {d}")).collect::<Vec<_>>().join("; ");
                let fields = v.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>().join(", ");
                (
                    format!("the request is malformed: {list}"),
                    format!("yêu cầu không hợp lệ ở trường {fields}: xem mô tả chi tiết từng trường trong BadRequest và sửa lại yêu cầu"),
                )
            }
            Refusal::CitizenNotFound => (
                "no citizen with that number: check the number with the citizen's card".into(),
                "không tìm thấy công dân với số này: đề nghị đối chiếu với thẻ căn cước".into(),
            ),
            Refusal::UpdateNotFound => (
                "no update your unit sent has that id: use the update_id SubmitUpdate returned".into(),
                "không có yêu cầu cập nhật nào của đơn vị với mã này: đề nghị dùng mã update_id do SubmitUpdate trả về".into(),
            ),
            Refusal::CaseNotFound => (
                "no bundle case your unit opened has that id: use the case_id OpenBundle returned".into(),
                "không có hồ sơ liên thông nào của đơn vị với mã này: đề nghị dùng mã case_id do OpenBundle trả về".into(),
            ),
            Refusal::StepNotReady { detail, detail_vi } => (
                format!("{detail}: act on the case's ready step (GetBundleCase shows each step's status)"),
                format!("{detail_vi}: đề nghị xử lý bước đang ở trạng thái sẵn sàng (xem trạng thái từng bước bằng GetBundleCase)"),
            ),
            Refusal::UpstreamUnavailable(why) => (
                format!("the population database is unavailable ({why}): retry later"),
                "CSDLQG về dân cư tạm thời không phản hồi: đề nghị thử lại sau".into(),
            ),
            Refusal::UpstreamTimeout => (
                "the population database did not answer in time: retry later".into(),
                "CSDLQG về dân cư phản hồi quá thời gian: đề nghị thử lại sau".into(),
            ),
            Refusal::CircuitOpen { retry_after } => (
                format!("the population database has been failing, so calls are paused: retry in {} ms", retry_after.as_millis()),
                format!("CSDLQG về dân cư đang gặp sự cố, tạm dừng kết nối: thử lại sau {} ms", retry_after.as_millis()),
            ),
            Refusal::UpstreamBusy { scope, limit } => match scope {
                BusyScope::Unit => (
                    format!("your unit already has {limit} calls in flight to the population database, its share: retry when some have answered"),
                    format!("đơn vị đã có {limit} yêu cầu đang chờ CSDLQG về dân cư, bằng mức tối đa của đơn vị: thử lại khi có yêu cầu đã được trả lời"),
                ),
                BusyScope::Total => (
                    format!("the gateway already has {limit} calls in flight to the population database, its limit: retry shortly"),
                    format!("cổng kết nối đã có {limit} yêu cầu đang chờ CSDLQG về dân cư, bằng mức tối đa: đề nghị thử lại sau ít phút"),
                ),
            },
            Refusal::AuditUnavailable => (
                "the audit trail cannot be written, so nothing is served (no data was released): retry later and alert the gateway operator".into(),
                "không ghi được nhật ký truy cập nên cổng từ chối phục vụ (không có dữ liệu nào được trả về): thử lại sau và báo đơn vị vận hành".into(),
            ),
            Refusal::LimiterUnavailable { retry_after } => (
                format!("the fleet's shared rate limiter cannot be reached, and this gateway refuses rather than admit calls it cannot count: retry in {} ms, and alert the gateway operator if it persists", retry_after.as_millis()),
                format!("không kết nối được bộ giới hạn tần suất dùng chung nên cổng kết nối tạm từ chối yêu cầu: thử lại sau {} ms và báo đơn vị vận hành nếu tình trạng kéo dài", retry_after.as_millis()),
            ),
            Refusal::CentralNotConfigured => (
                "this gateway has no central audit store ([audit.central]), so it can search its own trail only: query without all_replicas, or ask the operator to configure the store".into(),
                "cổng kết nối này chưa được cấu hình kho nhật ký tập trung nên chỉ tra cứu được nhật ký của chính nó: đề nghị bỏ tùy chọn tra cứu toàn bộ cụm hoặc liên hệ đơn vị vận hành".into(),
            ),
            Refusal::CentralUnavailable => (
                "the central audit store did not answer: retry later, or query this gateway's own trail without all_replicas".into(),
                "kho nhật ký tập trung không phản hồi: đề nghị thử lại sau hoặc tra cứu nhật ký của riêng cổng kết nối này".into(),
            ),
            Refusal::ShuttingDown { answered } => (
                format!("the gateway is shutting down; {answered} items were answered: send the rest again"),
                format!("cổng kết nối đang dừng; đã trả lời {answered} bản ghi: đề nghị gửi lại phần còn lại"),
            ),
            Refusal::BadJson(why) => (
                format!("{why}; send the operation's request as JSON in the protobuf JSON mapping (see GET /openapi.json)"),
                "nội dung yêu cầu không đúng định dạng JSON của thao tác (chi tiết trong thông báo tiếng Anh): đề nghị xem tài liệu GET /openapi.json".into(),
            ),
            Refusal::MessageTooLarge { limit } => (
                format!("the request is larger than the {limit} bytes this gateway accepts: send less (e.g. split a batch)"),
                format!("thông điệp yêu cầu vượt quá {limit} byte cho phép: đề nghị giảm kích thước yêu cầu (ví dụ chia nhỏ lô)"),
            ),
            Refusal::CallAbandoned { by: CallEnd::ClientDeadline } => (
                "the caller's deadline passed before the reply was ready; nothing was sent".into(),
                "hết thời hạn chờ của bên gọi trước khi có kết quả; không có dữ liệu nào được trả về".into(),
            ),
            Refusal::CallAbandoned { by: CallEnd::ClientCancelled } => (
                "the caller went away before the reply was ready; nothing was sent".into(),
                "bên gọi đã hủy yêu cầu trước khi có kết quả; không có dữ liệu nào được trả về".into(),
            ),
            Refusal::CallAbandoned { by: CallEnd::RequestTimeout } => (
                "the gateway's request timeout passed before the reply was ready; nothing was sent: retry later".into(),
                "yêu cầu xử lý quá thời gian cho phép của cổng kết nối; không có dữ liệu nào được trả về: đề nghị thử lại sau".into(),
            ),
            Refusal::BatchIdle { idle, answered } => (
                format!("the batch stream sent no item for {} s, so it was closed after {answered} items: send items without long pauses, or start a new stream", idle.as_secs()),
                format!("luồng đối chiếu theo lô không gửi bản ghi nào trong {} giây nên đã bị đóng sau {answered} bản ghi: đề nghị gửi liên tục hoặc mở luồng mới", idle.as_secs()),
            ),
            Refusal::Transport { message, .. } => (
                message.clone(),
                "yêu cầu bị từ chối ở tầng giao thức gRPC (ví dụ: thông điệp quá lớn hoặc sai định dạng): đề nghị kiểm tra kích thước và định dạng thông điệp".into(),
            ),
            Refusal::Internal(_) => (
                "the gateway failed unexpectedly: retry, and report the request id if it persists".into(),
                "cổng kết nối gặp lỗi: đề nghị thử lại và báo mã yêu cầu nếu lỗi tiếp diễn".into(),
            ),
        }
    }

    /// The gRPC status: code, message, details, Vietnamese message.
    pub fn to_status(&self) -> Status {
        if let Refusal::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        let (en, vi) = self.messages();
        let mut details = ErrorDetails::new();
        details.set_localized_message("vi-VN", vi);
        match self {
            Refusal::InvalidArgument(v) => {
                for (field, description) in v {
                    details.add_bad_request_violation(field.clone(), description.clone());
                }
            }
            Refusal::UnknownProcedure(p) => {
                details.add_bad_request_violation(
                    "context.procedure_code",
                    format!("{p} is not in the catalog"),
                );
            }
            Refusal::RateLimited {
                kind,
                subject,
                retry_after,
            } => {
                details.add_quota_failure_violation(
                    format!("{}:{subject}", kind.as_str()),
                    format!("the {} rate limit", kind.as_str()),
                );
                details.set_retry_info(Some(*retry_after));
            }
            Refusal::MessageTooLarge { limit } => {
                details.add_quota_failure_violation(
                    "max_message_bytes".to_owned(),
                    format!("at most {limit} bytes per request message"),
                );
            }
            Refusal::BatchTooLarge { max } => {
                details.add_quota_failure_violation(
                    "batch_items".to_owned(),
                    format!("at most {max} items per VerifyBatch stream"),
                );
            }
            Refusal::CircuitOpen { retry_after } | Refusal::LimiterUnavailable { retry_after } => {
                details.set_retry_info(Some(*retry_after));
            }
            Refusal::UpstreamBusy { scope, limit } => {
                details.add_quota_failure_violation(
                    format!("upstream_in_flight:{}", scope.as_str()),
                    format!("at most {limit} calls in flight to the population database"),
                );
                details.set_retry_info(Some(Duration::from_millis(100)));
            }
            _ => {}
        }
        details.set_error_info(self.reason(), DOMAIN, std::collections::HashMap::new());
        Status::with_error_details(self.code(), en, details)
    }
}

/// Whose in-flight cap a call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyScope {
    Unit,
    Total,
}

impl BusyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BusyScope::Unit => "unit",
            BusyScope::Total => "total",
        }
    }
}

fn kind_vi(kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::Officer => "cán bộ",
        LimitKind::Unit => "đơn vị",
        LimitKind::Global => "toàn hệ thống",
        LimitKind::Batch => "lô",
        LimitKind::Peer => "địa chỉ kết nối chưa xác thực",
        LimitKind::Verification => "số lần đối chiếu một trường của một công dân trong ngày",
    }
}

impl From<Refusal> for Status {
    fn from(r: Refusal) -> Status {
        r.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_names_the_limit_and_when_to_retry() {
        let s = Refusal::RateLimited {
            kind: LimitKind::Officer,
            subject: "CB.H42.0001".into(),
            retry_after: Duration::from_millis(1500),
        }
        .to_status();
        assert_eq!(s.code(), Code::ResourceExhausted);
        let d = s.get_error_details();
        assert_eq!(
            d.quota_failure().unwrap().violations[0].subject,
            "officer:CB.H42.0001"
        );
        assert_eq!(
            d.retry_info().unwrap().retry_delay,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(d.localized_message().unwrap().locale, "vi-VN");
        assert_eq!(d.error_info().unwrap().reason, "RATE_LIMITED");
    }

    #[test]
    fn internal_errors_leak_nothing() {
        let s = Refusal::Internal("sled: corrupted page 42 at /var/lib".into()).to_status();
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("sled"));
    }

    #[test]
    fn bad_requests_list_each_field() {
        let s = Refusal::InvalidArgument(vec![
            ("personal_id".into(), "too short".into()),
            ("context.dossier_id".into(), "missing".into()),
        ])
        .to_status();
        let d = s.get_error_details();
        assert_eq!(d.bad_request().unwrap().field_violations.len(), 2);
    }
}
