//! TLS: a client that trusts the server's certificate works, a plain-text
//! client or one without the certificate fails.

mod common;

use common::TestServer;
use labelaug::api::TlsIdentity;
use labelaug::client;
use labelaug::pb;

#[tokio::test]
async fn tls_server_accepts_only_trusting_clients() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("self-signed certificate");
    let certificate_pem = certified.cert.pem();
    let identity = TlsIdentity {
        certificate_pem: certificate_pem.clone().into_bytes(),
        key_pem: certified.signing_key.serialize_pem().into_bytes(),
    };
    let server = TestServer::start_with(|config| config.tls = Some(identity)).await;
    let https = server.address.replacen("http://", "https://", 1);

    let mut trusting = client::connect_with_options(&https, None, Some(certificate_pem.as_bytes()))
        .await
        .expect("TLS connection");
    let status = trusting
        .job_status(pb::JobStatusRequest {
            job_id: "job-x".to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "the call went through TLS");

    let untrusting = client::connect_with_options(&https, None, None).await;
    let failed = match untrusting {
        Err(_) => true,
        Ok(mut connection) => connection.list_models(pb::ListModelsRequest {}).await.is_err(),
    };
    assert!(failed, "a client without the certificate connected");

    let plain = client::connect(&server.address).await;
    let failed = match plain {
        Err(_) => true,
        Ok(mut connection) => connection.list_models(pb::ListModelsRequest {}).await.is_err(),
    };
    assert!(failed, "a plain-text client connected to the TLS server");
    server.stop().await;
}
