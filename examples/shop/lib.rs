//! The shop's journeys, its exploration world ([`explore::shop_world`]), and a guard that
//! runs the shop server in its own process: what the journey and exploration tests
//! (`examples/tests/`) and the benchmark share.
//!
//! The checkout journey signs a customer up, fills a cart, checkpoints, and branches:
//! pay by card, pay by voucher, cancel, run out of stock; every path checks the state it
//! starts from (stock, user and order counts, the single-use voucher), so a write leaking
//! from one path into the next fails it.

#[cfg(feature = "axum")]
pub mod axum_shop;
#[cfg(feature = "browser")]
pub mod browser;
pub mod explore;
#[cfg(feature = "openapi")]
pub mod openapi;

use std::io::{BufRead, BufReader, Read};
use std::path::Path as FsPath;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use venomqa::journey::{Branch, Client, Context, Invariant, Journey, Path, Step, StepError};
use venomqa::sqlite::Sqlite;

/// The admin key the tests start the server with.
pub const ADMIN_KEY: &str = "shop-admin-key";

/// The shop server, running in its own process on a free port; killed when dropped.
#[derive(Debug)]
pub struct ShopServer {
    child: Option<Child>,
    url: String,
}

impl ShopServer {
    /// Starts `binary` (the `shop` executable) on the database at `db_url`, on a free
    /// port, and waits until it listens.
    ///
    /// # Panics
    ///
    /// When the server does not start within 30 s; the message has its output.
    pub fn start(binary: &str, db_url: &str) -> ShopServer {
        Self::start_on(binary, db_url, 0)
    }

    /// Starts the server on `port` (0: a free one).
    pub fn start_on(binary: &str, db_url: &str, port: u16) -> ShopServer {
        Self::start_with(binary, db_url, port, &[])
    }

    /// Starts the server with the known bug `bug` switched on (`SHOP_BUG`, see the
    /// shop's documentation), on a free port.
    pub fn start_buggy(binary: &str, db_url: &str, bug: &str) -> ShopServer {
        Self::start_with(binary, db_url, 0, &[("SHOP_BUG", bug)])
    }

    /// Starts the server on `port` with these environment variables; `SHOP_BUG` is not
    /// inherited from the test's environment (only set here).
    pub fn start_with(binary: &str, db_url: &str, port: u16, env: &[(&str, &str)]) -> ShopServer {
        let mut command = Command::new(binary);
        command.env_remove("SHOP_BUG");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .args([
                "--db",
                db_url,
                "--port",
                &port.to_string(),
                "--admin-key",
                ADMIN_KEY,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start the shop server {binary}: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!(
                "the shop server on {db_url} did not start: stdout {line:?}, stderr {:?}",
                err.trim()
            );
        };
        ShopServer {
            url: format!("http://{addr}"),
            child: Some(child),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client of this server.
    pub fn client(&self) -> Client {
        Client::new(&self.url).timeout(Duration::from_secs(20))
    }

    /// Kills the server now (as a crash would) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ShopServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything in the SQLite file at `path`, read on a connection of its own: the schema,
/// every row of every table (`sqlite_sequence`, the AUTOINCREMENT counters, included).
pub fn dump(path: &FsPath) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("open the database file");
    conn.busy_timeout(Duration::from_secs(60))
        .expect("busy timeout");
    let mut out = Vec::new();
    let schema: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .expect("read the schema");
    for (kind, name, sql) in schema {
        out.push(format!("{kind} {name}: {sql:?}"));
        if kind != "table" {
            continue;
        }
        let rows: Vec<String> = conn
            .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY 1"))
            .and_then(|mut s| {
                let n = s.column_count();
                s.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map(|v| format!("{name}: {}", v.join(", ")))
                })?
                .collect()
            })
            .expect("read the rows");
        out.extend(rows);
    }
    out
}

/// `GET /stats` as JSON (admin).
fn stats(client: &Client) -> Result<Value, StepError> {
    Ok(client
        .get("/stats")
        .api_key("X-Api-Key", ADMIN_KEY)
        .send()?
        .expect_status(200)?
        .json()?)
}

/// A step checking `GET /stats` fields: `("users", 1)`, `("stock", 5)`, ...
pub fn expect_stats(name: &str, expected: &'static [(&'static str, i64)]) -> Step {
    Step::new(name, move |client, _| {
        let s = stats(client)?;
        for (field, value) in expected {
            if s[field] != *value {
                return Err(StepError::msg(format!(
                    "GET /stats: expected {field} = {value}, got {} (all: {s})",
                    s[field]
                )));
            }
        }
        Ok(())
    })
}

fn signup(name: &str, email: &'static str, key: &'static str) -> Step {
    Step::new(name, move |client, ctx| {
        let user = client
            .post("/users")
            .json(&json!({"email": email, "name": key}))
            .send()?
            .expect_status(201)?;
        ctx.set(format!("{key}_id"), user.value("/id")?);
        ctx.set(format!("{key}_token"), user.value("/token")?);
        Ok(())
    })
}

fn token(ctx: &Context, who: &str) -> Result<String, StepError> {
    Ok(ctx.str(&format!("{who}_token"))?.to_owned())
}

fn open_order(name: &str, who: &'static str, key: &'static str) -> Step {
    Step::new(name, move |client, ctx| {
        let order = client
            .post("/orders")
            .bearer(token(ctx, who)?)
            .send()?
            .expect_status(201)?
            .expect_json("/status", "open")?;
        ctx.set(key, order.value("/id")?);
        Ok(())
    })
}

fn add_items(name: &str, who: &'static str, order: &'static str, quantity: i64) -> Step {
    Step::new(name, move |client, ctx| {
        let (order, widget) = (ctx.i64(order)?, ctx.i64("widget_id")?);
        client
            .post(&format!("/orders/{order}/items"))
            .bearer(token(ctx, who)?)
            .json(&json!({"product_id": widget, "quantity": quantity}))
            .send()?;
        Ok(())
    })
}

fn pay(name: &str, who: &'static str, order: &'static str, payment: Value) -> Step {
    Step::new(name, move |client, ctx| {
        let order = ctx.i64(order)?;
        client
            .post(&format!("/orders/{order}/pay"))
            .bearer(token(ctx, who)?)
            .json(&payment)
            .send()?;
        Ok(())
    })
}

fn card() -> Value {
    json!({"method": "card", "card_number": "4242424242424242"})
}

fn voucher() -> Value {
    json!({"method": "voucher", "code": "WELCOME"})
}

fn expect_order(name: &str, order: &'static str, status: &'static str) -> Step {
    Step::new(name, move |client, ctx| {
        let id = ctx.i64(order)?;
        client
            .get(&format!("/orders/{id}"))
            .bearer(token(ctx, "ann")?)
            .send()?
            .expect_status(200)?
            .expect_json("/status", status)?;
        Ok(())
    })
}

/// The admin creates the products and the voucher (the journey's first step).
pub fn create_catalog() -> Step {
    Step::new("create_catalog", catalog)
}

/// Creates the widget (SKU `W-1`, 250 cents, 5 in stock; its id in `widget_id`) and the
/// voucher `WELCOME` (10000 cents), as the admin.
pub fn catalog(client: &Client, ctx: &mut Context) -> Result<(), StepError> {
    let admin = |path: &str, body: Value| {
        client
            .post(path)
            .api_key("X-Api-Key", ADMIN_KEY)
            .json(&body)
            .send()?
            .expect_status(201)
    };
    let widget = admin(
        "/products",
        json!({"sku": "W-1", "name": "Widget", "price_cents": 250, "stock": 5}),
    )?;
    ctx.set("widget_id", widget.value("/id")?);
    admin(
        "/vouchers",
        json!({"code": "WELCOME", "amount_cents": 10000}),
    )?;
    Ok(())
}

/// The checkout journey: 3 branches, 8 paths.
///
/// ```text
/// create_catalog, signup_ann                 checkpoint signed_up
///   branch: second_customer | email_taken
/// open_order, add_two_widgets                checkpoint cart_full
///   branch: pay_by_card | pay_by_voucher | cancel | out_of_stock
/// pay_by_card                                checkpoint paid
///   branch: cancel_paid_order | reorder_with_voucher
/// ```
pub fn checkout_journey() -> Journey {
    Journey::new("checkout")
        .description("sign up, fill a cart, and every way to end it")
        .step(create_catalog())
        .step(signup("signup_ann", "ann@example.com", "ann"))
        .checkpoint("signed_up")
        .branch(
            Branch::new("signed_up")
                .path(
                    Path::new("second_customer")
                        .step(signup("signup_bob", "bob@example.com", "bob"))
                        .step(expect_stats("two_users", &[("users", 2), ("orders", 0)])),
                )
                .path(
                    Path::new("email_taken")
                        .step(expect_stats("one_user", &[("users", 1)]))
                        .step(
                            Step::new("signup_ann_again", |client, _| {
                                client
                                    .post("/users")
                                    .json(&json!({"email": "ann@example.com", "name": "Ann 2"}))
                                    .send()?;
                                Ok(())
                            })
                            .expect_status(409),
                        )
                        .step(signup("bob_still_free", "bob@example.com", "bob")),
                ),
        )
        .step(open_order("open_order", "ann", "order_id"))
        .step(add_items("add_two_widgets", "ann", "order_id", 2).expect_status(201))
        .checkpoint("cart_full")
        .branch(
            Branch::new("cart_full")
                .path(
                    Path::new("pay_by_card")
                        .step(expect_stats(
                            "untouched",
                            &[("stock", 5), ("payments", 0), ("orders", 1)],
                        ))
                        .step(pay("pay", "ann", "order_id", card()).expect_status(200))
                        .step(expect_order("order_paid", "order_id", "paid"))
                        .step(expect_stats(
                            "stock_taken",
                            &[("stock", 3), ("payments", 1)],
                        )),
                )
                .path(
                    Path::new("pay_by_voucher")
                        .step(expect_stats(
                            "untouched",
                            &[("stock", 5), ("payments", 0), ("orders", 1)],
                        ))
                        .step(pay("redeem", "ann", "order_id", voucher()).expect_status(200))
                        .step(pay("pay_twice", "ann", "order_id", card()).expect_status(409))
                        .step(expect_stats(
                            "stock_taken",
                            &[("stock", 3), ("payments", 1)],
                        )),
                )
                .path(
                    Path::new("cancel")
                        .step(expect_order("still_open", "order_id", "open"))
                        .step(Step::new("cancel_order", |client, ctx| {
                            let id = ctx.i64("order_id")?;
                            client
                                .post(&format!("/orders/{id}/cancel"))
                                .bearer(token(ctx, "ann")?)
                                .send()?
                                .expect_status(200)?
                                .expect_json("/status", "cancelled")?;
                            Ok(())
                        }))
                        .step(pay("pay_cancelled", "ann", "order_id", card()).expect_status(409))
                        .step(expect_stats("stock_kept", &[("stock", 5), ("payments", 0)])),
                )
                .path(
                    Path::new("out_of_stock")
                        .step(add_items("four_more", "ann", "order_id", 4).expect_status(422))
                        .step(signup("signup_bob", "bob@example.com", "bob"))
                        .step(open_order("bob_opens", "bob", "bob_order"))
                        .step(add_items("bob_takes_four", "bob", "bob_order", 4).expect_status(201))
                        .step(pay("bob_pays", "bob", "bob_order", voucher()).expect_status(200))
                        .step(
                            pay("ann_pays_too_late", "ann", "order_id", card()).expect_status(422),
                        )
                        .step(expect_stats(
                            "one_left",
                            &[("stock", 1), ("payments", 1), ("users", 2)],
                        )),
                ),
        )
        .step(pay("pay_by_card", "ann", "order_id", card()).expect_status(200))
        .checkpoint("paid")
        .branch(
            Branch::new("paid")
                .path(
                    Path::new("cancel_paid_order").step(
                        Step::new("cancel_refused", |client, ctx| {
                            let id = ctx.i64("order_id")?;
                            client
                                .post(&format!("/orders/{id}/cancel"))
                                .bearer(token(ctx, "ann")?)
                                .send()?;
                            Ok(())
                        })
                        .expect_status(409),
                    ),
                )
                .path(
                    Path::new("reorder_with_voucher")
                        .step(open_order("open_second", "ann", "second_order"))
                        .step(
                            add_items("take_the_rest", "ann", "second_order", 3).expect_status(201),
                        )
                        .step(
                            pay("redeem_welcome", "ann", "second_order", voucher())
                                .expect_status(200),
                        )
                        .step(expect_stats(
                            "sold_out",
                            &[("stock", 0), ("payments", 2), ("orders", 2)],
                        )),
                ),
        )
}

/// The shop's invariants, checked after every step: through the database (the state
/// manager's own connection to the file) and through the API.
pub fn invariants() -> Vec<Invariant> {
    fn count(check: &mut venomqa::journey::Check<'_>, sql: &str) -> Result<i64, StepError> {
        let conn = check.connection::<Sqlite>()?;
        Ok(conn.query_row(sql, [], |r| r.get(0))?)
    }
    vec![
        Invariant::new("no order without a user", |check| {
            let n = count(check, "SELECT COUNT(*) FROM orders o LEFT JOIN users u ON u.id = o.user_id WHERE u.id IS NULL")?;
            if n > 0 {
                return Err(StepError::msg(format!("{n} orders have no user")));
            }
            Ok(())
        }),
        Invariant::new("stock never below 0", |check| {
            let n = count(check, "SELECT COUNT(*) FROM products WHERE stock < 0")?;
            if n > 0 {
                return Err(StepError::msg(format!("{n} products have negative stock")));
            }
            Ok(())
        }),
        Invariant::new(
            "a paid order has exactly one payment of its total",
            |check| {
                let n = count(
                check,
                "SELECT COUNT(*) FROM orders o LEFT JOIN payments p ON p.order_id = o.id \
                 WHERE (o.status = 'paid') <> (p.id IS NOT NULL) OR (p.id IS NOT NULL AND p.amount_cents <> o.total_cents)",
            )?;
                if n > 0 {
                    return Err(StepError::msg(format!(
                        "{n} orders disagree with their payments"
                    )));
                }
                Ok(())
            },
        ),
    ]
}

/// A journey of `paths` paths for the benchmark: a catalog and a customer, a cart, then
/// one branch in which every path pays for the cart (by card), checking the stock first.
pub fn bench_journey(paths: usize) -> Journey {
    let mut branch = Branch::new("cart_full");
    for i in 0..paths {
        branch = branch.path(
            Path::new(format!("pay_{i}"))
                .step(expect_stats("untouched", &[("stock", 5), ("payments", 0)]))
                .step(pay("pay", "ann", "order_id", card()).expect_status(200)),
        );
    }
    Journey::new(format!("bench_{paths}_paths"))
        .step(create_catalog())
        .step(signup("signup_ann", "ann@example.com", "ann"))
        .step(open_order("open_order", "ann", "order_id"))
        .step(add_items("add_two_widgets", "ann", "order_id", 2).expect_status(201))
        .checkpoint("cart_full")
        .branch(branch)
}
