use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response;

/// A failed AWS call, classified so the message can say what to do.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("cannot reach {endpoint} for {op}: {detail}. Check the endpoint (--aws-endpoint, aws.endpoint in the config) and the network")]
    Unreachable { op: &'static str, endpoint: String, detail: String },
    #[error("no AWS credentials for {op}: set AWS_PROFILE (or aws.profile in the config), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, for an identity in the canary account")]
    NoCredentials { op: &'static str },
    #[error("AWS rejected the credentials for {op} ({message}); they are unknown, inactive or mistyped")]
    BadCredentials { op: &'static str, message: String },
    #[error("AWS denied {op}: {message}. The identity honeytrail uses needs the permission {op} in the canary account; docs/aws.md gives the policy of each job (bootstrap, mint and retire, ingest)")]
    AccessDenied { op: &'static str, message: String },
    #[error("AWS throttled {op} even after retries ({message}); wait a minute and try again")]
    Throttled { op: &'static str, message: String },
    #[error("an AWS quota stopped {op} ({message}); retire unused keys, pack two keys per user (--pack), or add another canary account")]
    Limit { op: &'static str, message: String },
    #[error("{op}: {message}")]
    NoSuchEntity { op: &'static str, message: String },
    #[error("{op}: an entity of that name already exists ({message}); choose another name")]
    AlreadyExists { op: &'static str, message: String },
    #[error("{0}")]
    Refused(String),
    #[error("{cause}; then cleaning up failed too ({cleanup}), so IAM user {user} may be left in the canary account: remove it with `aws iam delete-user --user-name {user}` after deleting its keys and policies")]
    Leftover { cause: Box<AwsError>, cleanup: Box<AwsError>, user: String },
    #[error("{op} failed: {message}")]
    Other { op: &'static str, message: String },
}

impl AwsError {
    pub(crate) fn from_sdk<E>(op: &'static str, endpoint: &str, err: SdkError<E, Response>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let context = DisplayErrorContext(&err).to_string();
        match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ConstructionFailure(_)
                if context.contains("credentials") || context.contains("Credentials") =>
            {
                AwsError::NoCredentials { op }
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                AwsError::Unreachable { op, endpoint: endpoint.to_string(), detail: short(&context) }
            }
            SdkError::ServiceError(service) => {
                let e = service.err();
                let (code, message) = match e.code().filter(|c| !c.is_empty()) {
                    Some(code) => (code.to_string(), e.message().unwrap_or(code).to_string()),
                    // Some IAM-compatible endpoints (moto among them) wrap errors
                    // in <Errors>, which the SDK does not parse; read the body.
                    None => code_from_body(service.raw()),
                };
                match code.as_str() {
                    "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "Forbidden" => {
                        AwsError::AccessDenied { op, message }
                    }
                    "InvalidClientTokenId"
                    | "SignatureDoesNotMatch"
                    | "UnrecognizedClientException"
                    | "ExpiredToken" => AwsError::BadCredentials { op, message },
                    "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException" => {
                        AwsError::Throttled { op, message }
                    }
                    "LimitExceeded" | "LimitExceededException" => AwsError::Limit { op, message },
                    "NoSuchEntity" => AwsError::NoSuchEntity { op, message },
                    "EntityAlreadyExists" => AwsError::AlreadyExists { op, message },
                    _ => AwsError::Other { op, message: format!("{code}: {message}") },
                }
            }
            _ => AwsError::Other { op, message: short(&context) },
        }
    }
}

fn code_from_body(raw: &Response) -> (String, String) {
    let body = raw.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(body[start..end].to_string())
    };
    let status = raw.status().as_u16();
    let code = tag("Code").unwrap_or_else(|| match status {
        403 => "AccessDenied".into(),
        429 => "Throttling".into(),
        _ => format!("HTTP {status}"),
    });
    let message = tag("Message").unwrap_or_else(|| format!("HTTP status {status}"));
    (code, message)
}

/// The SDK's error chains repeat themselves; keep the informative tail short.
fn short(context: &str) -> String {
    let mut s: String = context.chars().take(400).collect();
    if context.chars().count() > 400 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod access_denied_tests {
    #[test]
    fn access_denied_names_the_permission_of_the_service_that_refused() {
        let e = super::AwsError::AccessDenied { op: "sqs:ReceiveMessage", message: "not authorized".into() };
        let text = e.to_string();
        assert!(text.contains("needs the permission sqs:ReceiveMessage"), "{text}");
        assert!(!text.contains("iam:CreateUser"), "not a list of another service's permissions: {text}");
    }
}
