//! The client against in-process transports and real sockets: redaction, messages,
//! timeouts, and what ureq sends.

use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Instant;

#[test]
fn secrets_never_reach_a_report() {
    let client = Client::with_transport("http://x.test/", |r: &Request| {
        assert_eq!(r.header("authorization"), Some("Bearer hunter2"));
        assert_eq!(r.header("x-shop-key"), Some("k3y"));
        Ok(Response::new(200)
            .with_header("Set-Cookie", "session=abc")
            .with_json(&serde_json::json!({"token": "tok-9", "id": 1})))
    })
    .bearer("hunter2")
    .api_key("X-Shop-Key", "k3y");
    let r = client
        .post("login")
        .query("password", "pw1")
        .json(&serde_json::json!({"email": "a@b", "password": "pw2"}))
        .send()
        .unwrap();
    assert_eq!(r.value("/token").unwrap(), "tok-9");
    let ex = client.take_exchanges();
    let shown = format!("{}{:?}{:?}", ex[0], ex[0], client);
    for secret in ["hunter2", "k3y", "abc", "tok-9", "pw1", "pw2"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("Authorization: Bearer ***"), "{shown}");
    assert!(
        shown.contains("POST http://x.test/login?password=***"),
        "{shown}"
    );
    assert!(client.take_exchanges().is_empty());
}

#[test]
fn mismatches_show_expected_and_actual() {
    let client = Client::with_transport("http://x.test", |_: &Request| {
        Ok(Response::new(409).with_json(&serde_json::json!({"error": "taken", "n": 2})))
    });
    let e = client
        .get("/a")
        .send()
        .unwrap()
        .expect_status(201)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"GET http://x.test/a: expected status 201, got 409; response body: {"error":"taken","n":2}"#
    );
    let e = client
        .get("/a")
        .send()
        .unwrap()
        .expect_json("/n", 3)
        .unwrap_err();
    assert!(
        e.to_string() == "GET http://x.test/a: response body at /n: expected 3, got 2",
        "{e}"
    );
    let e = client
        .get("/a")
        .send()
        .unwrap()
        .value("/missing")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("expected a value, got nothing there"),
        "{e}"
    );
}

#[test]
fn unreachable_and_timeout_name_the_url() {
    // A port nothing listens on: bind, read the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(format!("http://127.0.0.1:{port}"));
    let e = client.get("/health").send().unwrap_err();
    assert!(e.is_unreachable(), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "GET http://127.0.0.1:{port}/health: could not reach the server"
        )),
        "{e}"
    );
    assert!(std::error::Error::source(&e).is_some());

    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        std::thread::sleep(Duration::from_millis(800));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    });
    let client =
        Client::new(format!("http://127.0.0.1:{port}")).timeout(Duration::from_millis(150));
    let started = Instant::now();
    let e = client.get("/slow").send().unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(700));
    assert!(e.is_timeout(), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "GET http://127.0.0.1:{port}/slow: no response within 150 ms"
        )),
        "{e}"
    );
    hold.join().unwrap();
}

#[test]
fn ureq_sends_headers_and_json_and_reads_the_response() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\"b\":2}") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"ok":true}"#;
        write!(
            s,
            "HTTP/1.1 422 Unprocessable Entity\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8_lossy(&seen).into_owned()
    });
    let client = Client::new(format!("http://127.0.0.1:{port}/api"))
        .header("X-Trace", "t1")
        .api_key("x-api-key", "secret-key");
    let r = client
        .put("/items/1")
        .query("q", "a b")
        .json(&serde_json::json!({"a": 1, "b": 2}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.value("/ok").unwrap(), true);
    let seen = server.join().unwrap().to_ascii_lowercase();
    assert!(
        seen.starts_with("put /api/items/1?q=a%20b http/1.1"),
        "{seen}"
    );
    assert!(seen.contains("x-trace: t1") && seen.contains("x-api-key: secret-key"));
    assert!(seen.contains("content-type: application/json"));
}
