//! Limits on each request, tried against a real listener over raw TCP: an
//! oversized request head is refused and never served; a client that
//! stalls before its headers are complete is hung up on; a body that
//! trickles in is cut by the request timeout. No timing is asserted, only
//! that the server acts within a generous bound.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp};

/// Far longer than the 1 s limits below: only a server that never acts
/// runs into it.
const GENEROUS: Duration = Duration::from_secs(30);

async fn app_with_one_second_limits() -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |c| {
        c.http.header_read_timeout = Duration::from_secs(1);
        c.http.request_timeout = Duration::from_secs(1);
    })
    .await
    .expect("SQLite is always available")
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// What the server sends until it closes the connection (a reset counts as
/// closing); fails the test if it has not closed within [`GENEROUS`].
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(GENEROUS, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let received = String::from_utf8_lossy(&received).into_owned();
    assert!(
        closed.is_ok(),
        "the server kept the connection open for {GENEROUS:?}; it sent {received:?}"
    );
    received
}

/// The server is still up and serving after whatever a test did to it.
async fn still_serving(app: &TestApp) {
    let health = app.get("/healthz").send().await.expect("request");
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_with_two_hundred_headers_is_refused_with_431() {
    let app = app_with_one_second_limits().await;
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..200 {
        request.push_str(&format!("X-Filler-{i}: x\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = connect(&app).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = read_until_closed(&mut stream).await;
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "not refused: {response:?}"
    );
    still_serving(&app).await;
}

#[tokio::test]
async fn a_request_head_over_the_size_limit_is_refused_never_served() {
    let app = app_with_one_second_limits().await;
    // Headers under the limit (16 KiB by default) are fine.
    let within = app
        .get("/healthz")
        .header("x-filler", "a".repeat(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(within.status(), StatusCode::OK);

    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let mut stream = connect(&app).await;
    // The server stops reading at the limit, so the rest of the write may
    // fail; what matters is what comes back.
    let _ = stream.write_all(request.as_bytes()).await;
    let response = read_until_closed(&mut stream).await;
    // Closing the connection with the request unread may reset it before
    // the 431 is read: refusing either way is right, serving is not.
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 431"),
        "served or answered otherwise: {response:?}"
    );
    still_serving(&app).await;
}

#[tokio::test]
async fn a_client_that_stalls_before_its_headers_are_complete_is_hung_up_on() {
    let app = app_with_one_second_limits().await;
    let mut half = connect(&app).await;
    half.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    let mut silent = connect(&app).await;

    for (what, stream) in [("half a request", &mut half), ("nothing", &mut silent)] {
        let response = read_until_closed(stream).await;
        assert!(
            !response.starts_with("HTTP/1.1 2"),
            "{what} was answered as a request: {response:?}"
        );
    }
    still_serving(&app).await;
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_by_the_request_timeout() {
    let app = app_with_one_second_limits().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 4000\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // A byte every 200 ms: the whole body would take over 13 minutes.
    let trickle = tokio::spawn(async move {
        for _ in 0..4000 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b"a").await.is_err() {
                break;
            }
        }
    });
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let answered = tokio::time::timeout(GENEROUS, async {
        // Until the end of the JSON body (or the connection).
        while !received.ends_with(b"}") {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    trickle.abort();
    let response = String::from_utf8_lossy(&received);
    assert!(
        answered.is_ok(),
        "no answer within {GENEROUS:?}: {response:?}"
    );
    assert!(response.starts_with("HTTP/1.1 503"), "{response:?}");
    assert!(
        response.contains("\"error\":\"temporarily_unavailable\""),
        "{response:?}"
    );
    still_serving(&app).await;
}
