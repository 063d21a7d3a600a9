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

/// A keep-alive server that frames requests by `Content-Length` only, as Python's
/// `http.server` and several small frameworks do: a body sent chunked is left in the
/// socket and read as the next request line. It answers each request `200 ok` and returns
/// the request heads it saw, and `Err` with the first line it could not parse.
fn content_length_only_server(
    requests: usize,
) -> (u16, std::thread::JoinHandle<Result<Vec<String>, String>>) {
    use std::io::BufRead;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut heads = Vec::new();
        while heads.len() < requests {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 {
                    return Err(format!("the connection closed after {heads:?}"));
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let first = head.lines().next().unwrap_or_default().to_owned();
            if first.split(' ').count() != 3 || !first.ends_with("http/1.1") {
                let _ = writer.write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                return Err(format!("bad request line {first:?} after {heads:?}"));
            }
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            writer
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
            heads.push(head);
        }
        Ok(heads)
    });
    (port, server)
}

/// The heads of POST, POST, PUT, DELETE without a body, then a GET: `Content-Length: 0`
/// on the first four, no body header on the GET, never chunked.
fn bodiless_heads_are_framed(heads: &[String]) {
    for head in &heads[..4] {
        assert!(head.contains("content-length: 0"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
    }
    assert!(
        !heads[4].contains("content-length") && !heads[4].contains("transfer-encoding"),
        "a GET sends no body headers: {}",
        heads[4]
    );
}

#[test]
fn a_request_without_a_body_is_framed_by_content_length_zero() {
    let (port, server) = content_length_only_server(5);
    let client = Client::new(format!("http://127.0.0.1:{port}"));
    for request in [
        client.post("/orders/1/cancel"),
        client.post("/orders/1/cancel"),
        client.put("/flags/on"),
        client.delete("/orders/1"),
        client.get("/orders"),
    ] {
        // A request the server could not frame fails here, or the next one does.
        if let Err(e) = request.send() {
            panic!("{e}; the server saw: {:?}", server.join().unwrap());
        }
    }
    bodiless_heads_are_framed(&server.join().unwrap().unwrap());
}

#[test]
fn any_authorization_scheme_is_sent_and_redacted_with_its_scheme_kept() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sent = seen.clone();
    let client = Client::with_transport("http://x.test/", move |r: &Request| {
        let auth = r.header("authorization").unwrap_or_default().to_owned();
        sent.lock().unwrap().push(auth);
        Ok(Response::new(200))
    })
    .authorization("Token", "jwt.s3cret");
    client.get("user").send().unwrap();
    // A request's own scheme replaces the client's.
    client
        .get("user")
        .authorization("Basic", "dXNlcjpwdw==")
        .send()
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["Token jwt.s3cret", "Basic dXNlcjpwdw=="]
    );
    let shown = format!("{:?}", client.take_exchanges());
    assert!(
        shown.contains("Token ***") && shown.contains("Basic ***"),
        "{shown}"
    );
    assert!(
        !shown.contains("s3cret") && !shown.contains("dXNlcjpwdw"),
        "{shown}"
    );
}

#[cfg(feature = "journey-async")]
#[tokio::test(flavor = "current_thread")]
async fn an_awaited_request_without_a_body_is_framed_by_content_length_zero() {
    let (port, server) = content_length_only_server(5);
    let client = Client::new(format!("http://127.0.0.1:{port}"));
    for request in [
        client.post("/orders/1/cancel"),
        client.post("/orders/1/cancel"),
        client.put("/flags/on"),
        client.delete("/orders/1"),
        client.get("/orders"),
    ] {
        if let Err(e) = request.await {
            panic!("{e}; the server saw: {:?}", server.join().unwrap());
        }
    }
    bodiless_heads_are_framed(&server.join().unwrap().unwrap());
    let exchanges = client.take_exchanges();
    assert_eq!(exchanges.len(), 5);
    assert_eq!(exchanges[0].method, Method::Post);
}

#[cfg(feature = "journey-async")]
#[tokio::test(flavor = "current_thread")]
async fn awaited_requests_get_the_same_errors_as_blocking_ones() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::new(format!("http://127.0.0.1:{port}"));
    let e = client.get("/x").await.unwrap_err();
    assert!(matches!(e, HttpError::Unreachable { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("GET http://127.0.0.1:{port}/x")),
        "{e}"
    );
    // A server that accepts and never answers: the request's timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = Client::new(format!("http://{}", listener.local_addr().unwrap()));
    let started = Instant::now();
    let e = slow
        .get("/slow")
        .timeout(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            HttpError::Timeout {
                timeout_ms: 200,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(listener);
}

#[cfg(feature = "journey-async")]
#[tokio::test(flavor = "current_thread")]
async fn a_router_in_process_answers_and_is_recorded_like_a_server() {
    use axum::routing::post;
    use axum::{http::HeaderMap, Json, Router};
    let app = Router::new()
        .route(
            "/echo",
            post(
                |headers: HeaderMap, Json(body): Json<serde_json::Value>| async move {
                    // What the app saw, without echoing the secret into the report.
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v == "Token jwt.abc")
                        .unwrap_or_default();
                    (
                        axum::http::StatusCode::CREATED,
                        Json(serde_json::json!({"auth": auth, "body": body})),
                    )
                },
            ),
        )
        .route("/empty", post(|| async { "" }));
    let client = Client::service(app).authorization("Token", "jwt.abc");
    let r = client
        .post("/echo")
        .json(&serde_json::json!({"n": 1}))
        .await
        .unwrap()
        .expect_status(201)
        .unwrap();
    assert_eq!(r.value("/auth").unwrap(), true);
    assert_eq!(r.value("/body/n").unwrap(), 1);
    client
        .post("/empty")
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    let e = client
        .get("/missing")
        .await
        .unwrap()
        .expect_status(200)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("GET http://service/missing: expected status 200, got 404"),
        "{e}"
    );
    let exchanges = client.take_exchanges();
    assert_eq!(exchanges.len(), 3);
    let shown = format!("{}", exchanges[0]);
    assert!(shown.contains("Authorization: Token ***"), "{shown}");
    assert!(!shown.contains("jwt.abc"), "{shown}");
}

#[cfg(feature = "journey-async")]
#[tokio::test(flavor = "current_thread")]
async fn a_blocking_send_to_a_service_on_one_thread_is_refused_with_the_remedy() {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let client = Client::service(app);
    let e = client.get("/").send().unwrap_err();
    assert!(e.to_string().contains(".await the request"), "{e}");
}

#[cfg(feature = "journey-async")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_send_to_a_service_works_on_a_multi_threaded_runtime() {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let client = Client::service(app);
    let r = client.get("/").send().unwrap().expect_status(200).unwrap();
    assert_eq!(r.text(), "ok");
}
