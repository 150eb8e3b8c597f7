//! Optional bearer-token authentication for the gRPC services.
//!
//! Clients send `authorization: Bearer <token>`. Tokens are compared
//! through their SHA-256 digests with a constant-time comparison, so the
//! time taken reveals neither the token's bytes nor its length.

use sha2::{Digest, Sha256};
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tracing::warn;

/// Checks the bearer token of every request when a token is configured.
#[derive(Clone)]
pub struct BearerAuth {
    expected: Option<[u8; 32]>,
}

impl BearerAuth {
    pub fn new(token: Option<&str>) -> Self {
        Self {
            expected: token.map(digest),
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests in time independent of where they differ.
fn constant_time_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |difference, (x, y)| difference | (x ^ y)) == 0
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match presented {
            Some(token) if constant_time_equal(&digest(token.trim()), expected) => Ok(request),
            Some(_) => {
                warn!("rejected a request with an invalid bearer token");
                Err(Status::unauthenticated("invalid bearer token"))
            }
            None => {
                warn!("rejected a request without a bearer token");
                Err(Status::unauthenticated(
                    "missing bearer token: send the header `authorization: Bearer <token>`",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = header {
            request.metadata_mut().insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn no_token_configured_allows_everything() {
        assert!(BearerAuth::new(None).call(request(None)).is_ok());
    }

    #[test]
    fn matching_token_is_accepted() {
        let mut auth = BearerAuth::new(Some("s3cret"));
        assert!(auth.call(request(Some("Bearer s3cret"))).is_ok());
    }

    #[test]
    fn wrong_or_missing_token_is_unauthenticated() {
        let mut auth = BearerAuth::new(Some("s3cret"));
        for header in [None, Some("Bearer nope"), Some("Basic s3cret"), Some("Bearer s3cret2")] {
            let status = auth.call(request(header)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{header:?}");
        }
    }
}
