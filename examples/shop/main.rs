//! `shop`: a small HTTP API server, the application the journey tests drive. Users sign
//! up, admins add products and vouchers, customers fill orders and pay by card or
//! voucher, or cancel. It runs in its own process with its own connection pool, as any
//! API under test does.
//!
//! ```text
//! shop --db sqlite://target/shop.sqlite [--port 0] [--admin-key KEY] [--threads 4]
//! shop --db mysql://root@127.0.0.1:3306/shop      (built with --features mysql)
//! ```
//!
//! `SHOP_DATABASE_URL`, `SHOP_PORT` and `SHOP_ADMIN_KEY` stand for the flags. Port 0 picks
//! a free port; the server prints `listening on 127.0.0.1:<port>` once it accepts
//! requests.
//!
//! `SHOP_BUG` switches on known bugs, for the explorer to find (`examples/tests/it/explore.rs`):
//!
//! - `voucher_oversell`: paying by voucher skips the stock check, so two orders that each
//!   fit in the stock, paid one by card and one by voucher, take more than there is and
//!   the stock goes negative. No written journey pays an order by voucher after another
//!   order took the stock it counted on.
//! - `long_name`: a user name over 64 characters answers 500 (the column is narrower than
//!   the 100 the API promises).
//! - `cancel_drops_total`: a cancelled order with items is answered without its
//!   `total_cents`, a field the spec requires.
//!
//! `GET /openapi.yaml` serves the API's description (`examples/shop/openapi.yaml`).
//!
//! | route | auth | answers |
//! |---|---|---|
//! | `GET /health` | | 200 |
//! | `POST /users {email, name}` | | 201 `{id, email, name, token}`; 400 invalid; 409 e-mail taken |
//! | `GET /users/{id}` | | 200; 404 |
//! | `POST /products {sku, name, price_cents, stock}` | `X-Api-Key` | 201; 400; 401; 409 SKU taken |
//! | `GET /products/{id}` | | 200 `{id, sku, name, price_cents, stock}`; 404 |
//! | `POST /vouchers {code, amount_cents}` | `X-Api-Key` | 201; 400; 401; 409 code taken |
//! | `POST /orders` | bearer | 201 `{id, status: "open", total_cents: 0, items: []}` |
//! | `GET /orders/{id}` | bearer (owner) | 200 the order, its items and payment; 404 |
//! | `POST /orders/{id}/items {product_id, quantity}` | bearer (owner) | 201 the order; 400; 404; 409 not open; 422 not enough stock |
//! | `POST /orders/{id}/pay {method: "card", card_number}` or `{method: "voucher", code}` | bearer (owner) | 200 the order, paid; 400; 402 card declined; 404 voucher; 409 not open or voucher used; 422 out of stock, empty order or voucher too small |
//! | `POST /orders/{id}/cancel` | bearer (owner) | 200 the order, cancelled; 409 paid or cancelled |
//! | `GET /users/{id}/orders` | bearer (that user) | 200 `{orders: [...]}` |
//! | `GET /stats` | `X-Api-Key` | 200 counts of users, products, orders, payments, and the total stock |

mod store;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::sync::Arc;

use serde_json::{json, Value};
use store::{DbError, Store, Tx};

/// An answer other than success: a status and a message.
#[derive(Debug)]
struct ApiError(u16, String);

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unique(m) => ApiError(409, m),
            DbError::Other(m) => ApiError(500, format!("database error: {m}")),
        }
    }
}

fn err<T>(status: u16, message: impl Into<String>) -> Result<T, ApiError> {
    Err(ApiError(status, message.into()))
}

type Answer = Result<(u16, Value), ApiError>;

struct Shop {
    store: Store,
    admin_key: String,
    bugs: Bugs,
}

/// The bugs `SHOP_BUG` switched on (a comma-separated list).
#[derive(Debug, Default)]
struct Bugs {
    voucher_oversell: bool,
    long_name: bool,
    cancel_drops_total: bool,
}

/// The API's description, served at `GET /openapi.yaml`.
const SPEC: &str = include_str!("openapi.yaml");

fn bugs() -> Result<Bugs, String> {
    let mut bugs = Bugs::default();
    for name in std::env::var("SHOP_BUG").unwrap_or_default().split(',') {
        match name.trim() {
            "" => {}
            "voucher_oversell" => bugs.voucher_oversell = true,
            "long_name" => bugs.long_name = true,
            "cancel_drops_total" => bugs.cancel_drops_total = true,
            other => {
                return Err(format!(
                    "SHOP_BUG: unknown bug {other:?}; the known ones are voucher_oversell, long_name and cancel_drops_total"
                ))
            }
        }
    }
    Ok(bugs)
}

struct Args {
    db: String,
    port: u16,
    admin_key: String,
    threads: usize,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        db: std::env::var("SHOP_DATABASE_URL").unwrap_or_default(),
        port: std::env::var("SHOP_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0),
        admin_key: std::env::var("SHOP_ADMIN_KEY").unwrap_or_else(|_| "shop-admin-key".into()),
        threads: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--db" => args.db = value()?,
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--admin-key" => args.admin_key = value()?,
            "--threads" => {
                args.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.db.is_empty() {
        return Err("no database: give --db <url> or SHOP_DATABASE_URL".into());
    }
    Ok(args)
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("shop: {e}\nusage: shop --db <sqlite://file | mysql://...> [--port N] [--admin-key KEY] [--threads N]");
            std::process::exit(2);
        }
    };
    let bugs = match bugs() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("shop: {e}");
            std::process::exit(2);
        }
    };
    if bugs.voucher_oversell {
        eprintln!("shop: SHOP_BUG=voucher_oversell: paying by voucher skips the stock check");
    }
    if bugs.long_name {
        eprintln!("shop: SHOP_BUG=long_name: a name over 64 characters answers 500");
    }
    if bugs.cancel_drops_total {
        eprintln!("shop: SHOP_BUG=cancel_drops_total: a cancelled order loses its total_cents");
    }
    let store = match Store::open(&args.db, args.threads as u32 + 1) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shop: {e}");
            std::process::exit(1);
        }
    };
    let server = match tiny_http::Server::http(("127.0.0.1", args.port)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("shop: cannot listen on 127.0.0.1:{}: {e}", args.port);
            std::process::exit(1);
        }
    };
    let shop = Arc::new(Shop {
        store,
        admin_key: args.admin_key,
        bugs,
    });
    let port = server.server_addr().to_ip().map_or(args.port, |a| a.port());
    println!("listening on 127.0.0.1:{port}");
    let workers: Vec<_> = (0..args.threads.max(1))
        .map(|_| {
            let (server, shop) = (server.clone(), shop.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    shop.handle(request);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

impl Shop {
    fn handle(&self, mut request: tiny_http::Request) {
        let method = request.method().as_str().to_owned();
        let url = request.url().to_owned();
        let path = url.split('?').next().unwrap_or("").to_owned();
        let header = |name: &str| {
            request
                .headers()
                .iter()
                .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                .map(|h| h.value.as_str().to_owned())
        };
        let bearer =
            header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
        let api_key = header("x-api-key");
        if method == "GET" && path == "/openapi.yaml" {
            let response = tiny_http::Response::from_string(SPEC).with_header(
                tiny_http::Header::from_bytes("Content-Type", "application/yaml")
                    .expect("a valid header"),
            );
            let _ = request.respond(response);
            return;
        }
        let mut body = String::new();
        let read = request.as_reader().take(1 << 20).read_to_string(&mut body);
        let answer = match read {
            Err(e) => err(400, format!("unreadable body: {e}")),
            Ok(_) => {
                let auth = Auth { bearer, api_key };
                self.route(&method, &path, &body, &auth)
            }
        };
        let (status, value) = match answer {
            Ok(ok) => ok,
            Err(ApiError(status, message)) => (status, json!({ "error": message })),
        };
        let response = tiny_http::Response::from_string(value.to_string())
            .with_status_code(status)
            .with_header(
                tiny_http::Header::from_bytes("Content-Type", "application/json")
                    .expect("a valid header"),
            );
        let _ = request.respond(response);
    }

    fn route(&self, method: &str, path: &str, body: &str, auth: &Auth) -> Answer {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let id = |s: &str| -> Result<i64, ApiError> {
            s.parse()
                .map_err(|_| ApiError(404, format!("no such resource: {path}")))
        };
        match (method, parts.as_slice()) {
            ("GET", ["health"]) => Ok((200, json!({"ok": true}))),
            ("POST", ["users"]) => self.signup(&parse(body)?),
            ("GET", ["users", user]) => self.user(id(user)?),
            ("GET", ["users", user, "orders"]) => self.user_orders(id(user)?, auth),
            ("POST", ["products"]) => self.add_product(&parse(body)?, auth),
            ("GET", ["products", product]) => self.product(id(product)?),
            ("POST", ["vouchers"]) => self.add_voucher(&parse(body)?, auth),
            ("POST", ["orders"]) => self.open_order(auth),
            ("GET", ["orders", order]) => {
                let order = id(order)?;
                self.store.transaction(|tx| {
                    owned_order(tx, order, auth)?;
                    Ok((200, self.order_view(order_json(tx, order)?)))
                })
            }
            ("POST", ["orders", order, "items"]) => self.add_item(id(order)?, &parse(body)?, auth),
            ("POST", ["orders", order, "pay"]) => self.pay(id(order)?, &parse(body)?, auth),
            ("POST", ["orders", order, "cancel"]) => self.cancel(id(order)?, auth),
            ("GET", ["stats"]) => self.stats(auth),
            _ => err(404, format!("no route {method} {path}")),
        }
    }

    fn admin(&self, auth: &Auth) -> Result<(), ApiError> {
        match &auth.api_key {
            Some(k) if *k == self.admin_key => Ok(()),
            Some(_) => err(401, "wrong X-Api-Key"),
            None => err(401, "this route needs the admin X-Api-Key header"),
        }
    }

    fn signup(&self, body: &Value) -> Answer {
        let email = text(body, "email")?;
        let name = text(body, "name")?;
        let at = email.find('@');
        if at.is_none_or(|i| i == 0 || i + 1 == email.len()) || email.contains(' ') {
            return err(400, format!("invalid e-mail address {email:?}"));
        }
        if self.bugs.long_name && name.chars().count() > 64 {
            return err(500, "database error: value too long for column name");
        }
        let token = new_token();
        self.store.transaction(|tx| {
            let id = tx
                .insert(
                    "INSERT INTO users (email, name, token) VALUES (?, ?, ?)",
                    &[
                        email.as_str().into(),
                        name.as_str().into(),
                        token.as_str().into(),
                    ],
                )
                .map_err(|e| match e {
                    DbError::Unique(_) => {
                        ApiError(409, format!("e-mail {email} is already registered"))
                    }
                    other => other.into(),
                })?;
            Ok((
                201,
                json!({"id": id, "email": email, "name": name, "token": token}),
            ))
        })
    }

    fn user(&self, id: i64) -> Answer {
        self.store.transaction(|tx| {
            match tx.row(
                "SELECT id, email, name FROM users WHERE id = ?",
                &[id.into()],
            )? {
                Some(r) => Ok((
                    200,
                    json!({"id": r[0].int(), "email": r[1].text(), "name": r[2].text()}),
                )),
                None => err(404, format!("no user {id}")),
            }
        })
    }

    fn user_orders(&self, user: i64, auth: &Auth) -> Answer {
        self.store.transaction(|tx| {
            let me = authenticate(tx, auth)?;
            if me != user {
                return err(403, "you can only list your own orders");
            }
            let ids = tx.query(
                "SELECT id FROM orders WHERE user_id = ? ORDER BY id",
                &[user.into()],
            )?;
            let mut orders = Vec::new();
            for r in ids {
                orders.push(self.order_view(order_json(tx, r[0].int())?));
            }
            Ok((200, json!({ "orders": orders })))
        })
    }

    fn add_product(&self, body: &Value, auth: &Auth) -> Answer {
        self.admin(auth)?;
        let sku = text(body, "sku")?;
        let name = text(body, "name")?;
        let price = int(body, "price_cents")?;
        let stock = int(body, "stock")?;
        if price <= 0 || stock < 0 {
            return err(400, "price_cents must be positive and stock not negative");
        }
        self.store.transaction(|tx| {
            let id = tx
                .insert(
                    "INSERT INTO products (sku, name, price_cents, stock) VALUES (?, ?, ?, ?)",
                    &[
                        sku.as_str().into(),
                        name.as_str().into(),
                        price.into(),
                        stock.into(),
                    ],
                )
                .map_err(|e| match e {
                    DbError::Unique(_) => ApiError(409, format!("SKU {sku} exists")),
                    other => other.into(),
                })?;
            Ok((201, product_json(tx, id)?))
        })
    }

    fn product(&self, id: i64) -> Answer {
        self.store
            .transaction(|tx| Ok((200, product_json(tx, id)?)))
    }

    fn add_voucher(&self, body: &Value, auth: &Auth) -> Answer {
        self.admin(auth)?;
        let code = text(body, "code")?;
        let amount = int(body, "amount_cents")?;
        if amount <= 0 {
            return err(400, "amount_cents must be positive");
        }
        self.store.transaction(|tx| {
            let id = tx
                .insert(
                    "INSERT INTO vouchers (code, amount_cents) VALUES (?, ?)",
                    &[code.as_str().into(), amount.into()],
                )
                .map_err(|e| match e {
                    DbError::Unique(_) => ApiError(409, format!("voucher {code} exists")),
                    other => other.into(),
                })?;
            Ok((201, json!({"id": id, "code": code, "amount_cents": amount})))
        })
    }

    fn open_order(&self, auth: &Auth) -> Answer {
        self.store.transaction(|tx| {
            let user = authenticate(tx, auth)?;
            let id = tx.insert(
                "INSERT INTO orders (user_id, status, total_cents) VALUES (?, 'open', 0)",
                &[user.into()],
            )?;
            Ok((201, order_json(tx, id)?))
        })
    }

    fn add_item(&self, order: i64, body: &Value, auth: &Auth) -> Answer {
        let product = int(body, "product_id")?;
        let quantity = int(body, "quantity")?;
        if quantity <= 0 {
            return err(400, "quantity must be positive");
        }
        self.store.transaction(|tx| {
            let status = owned_order(tx, order, auth)?;
            if status != "open" {
                return err(409, format!("order {order} is {status}, not open"));
            }
            let Some(p) = tx.row("SELECT price_cents, stock FROM products WHERE id = ?", &[product.into()])? else {
                return err(404, format!("no product {product}"));
            };
            let (price, stock) = (p[0].int(), p[1].int());
            let in_order = tx.scalar(
                "SELECT COALESCE(SUM(quantity), 0) FROM order_items WHERE order_id = ? AND product_id = ?",
                &[order.into(), product.into()],
            )?;
            if in_order + quantity > stock {
                return err(
                    422,
                    format!("out of stock: product {product} has {stock} in stock, the order would hold {}", in_order + quantity),
                );
            }
            tx.exec(
                "INSERT INTO order_items (order_id, product_id, quantity, price_cents) VALUES (?, ?, ?, ?)",
                &[order.into(), product.into(), quantity.into(), price.into()],
            )?;
            tx.exec(
                "UPDATE orders SET total_cents = total_cents + ? WHERE id = ?",
                &[(price * quantity).into(), order.into()],
            )?;
            Ok((201, order_json(tx, order)?))
        })
    }

    fn pay(&self, order: i64, body: &Value, auth: &Auth) -> Answer {
        let method = text(body, "method")?;
        self.store.transaction(|tx| {
            let status = owned_order(tx, order, auth)?;
            if status != "open" {
                return err(409, format!("order {order} is {status}, not open"));
            }
            let total = tx.scalar("SELECT total_cents FROM orders WHERE id = ?", &[order.into()])?;
            if total == 0 {
                return err(422, format!("order {order} is empty"));
            }
            // Take the stock: every line must still be available.
            let lines = tx.query(
                "SELECT i.product_id, SUM(i.quantity), p.stock FROM order_items i JOIN products p ON p.id = i.product_id WHERE i.order_id = ? GROUP BY i.product_id, p.stock",
                &[order.into()],
            )?;
            // The seeded bug: the voucher path forgets the stock check.
            let checks_stock = !(self.bugs.voucher_oversell && method == "voucher");
            for l in &lines {
                let (product, quantity, stock) = (l[0].int(), l[1].int(), l[2].int());
                if quantity > stock && checks_stock {
                    return err(422, format!("out of stock: product {product} has {stock} left, the order needs {quantity}"));
                }
                tx.exec(
                    "UPDATE products SET stock = stock - ? WHERE id = ?",
                    &[quantity.into(), product.into()],
                )?;
            }
            let reference = match method.as_str() {
                "card" => {
                    let number = text(body, "card_number")?;
                    if number.len() != 16 || !number.bytes().all(|b| b.is_ascii_digit()) {
                        return err(400, "card_number must be 16 digits");
                    }
                    if number == "4000000000000002" {
                        return err(402, "card declined");
                    }
                    format!("card-{}", &number[12..])
                }
                "voucher" => {
                    let code = text(body, "code")?;
                    let Some(v) = tx.row("SELECT id, amount_cents, used_by_order FROM vouchers WHERE code = ?", &[code.as_str().into()])? else {
                        return err(404, format!("no voucher {code}"));
                    };
                    if !v[2].is_null() {
                        return err(409, format!("voucher {code} was already used by order {}", v[2].int()));
                    }
                    if v[1].int() < total {
                        return err(422, format!("voucher {code} covers {} of {total} cents", v[1].int()));
                    }
                    tx.exec("UPDATE vouchers SET used_by_order = ? WHERE id = ?", &[order.into(), v[0].clone()])?;
                    format!("voucher-{code}")
                }
                other => return err(400, format!("unknown payment method {other:?}; use card or voucher")),
            };
            tx.exec(
                "INSERT INTO payments (order_id, method, amount_cents, reference) VALUES (?, ?, ?, ?)",
                &[order.into(), method.as_str().into(), total.into(), reference.into()],
            )?;
            tx.exec("UPDATE orders SET status = 'paid' WHERE id = ?", &[order.into()])?;
            Ok((200, order_json(tx, order)?))
        })
    }

    fn cancel(&self, order: i64, auth: &Auth) -> Answer {
        self.store.transaction(|tx| {
            let status = owned_order(tx, order, auth)?;
            if status != "open" {
                return err(
                    409,
                    format!("order {order} is {status}; only open orders can be cancelled"),
                );
            }
            tx.exec(
                "UPDATE orders SET status = 'cancelled' WHERE id = ?",
                &[order.into()],
            )?;
            Ok((200, self.order_view(order_json(tx, order)?)))
        })
    }

    /// An order as answered: with `cancel_drops_total`, a cancelled order with items
    /// loses its `total_cents`.
    fn order_view(&self, mut order: Value) -> Value {
        let drop = self.bugs.cancel_drops_total
            && order["status"] == "cancelled"
            && order["items"].as_array().is_some_and(|i| !i.is_empty());
        if drop {
            if let Some(o) = order.as_object_mut() {
                o.remove("total_cents");
            }
        }
        order
    }

    fn stats(&self, auth: &Auth) -> Answer {
        self.admin(auth)?;
        self.store.transaction(|tx| {
            let mut count = |table: &str| tx.scalar(&format!("SELECT COUNT(*) FROM {table}"), &[]);
            let (users, products, orders, payments) = (count("users")?, count("products")?, count("orders")?, count("payments")?);
            let stock = tx.scalar("SELECT COALESCE(SUM(stock), 0) FROM products", &[])?;
            Ok((200, json!({"users": users, "products": products, "orders": orders, "payments": payments, "stock": stock})))
        })
    }
}

struct Auth {
    bearer: Option<String>,
    api_key: Option<String>,
}

/// The user of the bearer token.
fn authenticate(tx: &mut dyn Tx, auth: &Auth) -> Result<i64, ApiError> {
    let Some(token) = &auth.bearer else {
        return err(
            401,
            "this route needs an Authorization: Bearer <token> header (the token from POST /users)",
        );
    };
    match tx.row(
        "SELECT id FROM users WHERE token = ?",
        &[token.as_str().into()],
    )? {
        Some(r) => Ok(r[0].int()),
        None => err(401, "unknown token"),
    }
}

/// The order's status, if the bearer owns it.
fn owned_order(tx: &mut dyn Tx, order: i64, auth: &Auth) -> Result<String, ApiError> {
    let user = authenticate(tx, auth)?;
    match tx.row(
        "SELECT user_id, status FROM orders WHERE id = ?",
        &[order.into()],
    )? {
        Some(r) if r[0].int() == user => Ok(r[1].text()),
        Some(_) => err(403, format!("order {order} belongs to another user")),
        None => err(404, format!("no order {order}")),
    }
}

fn order_json(tx: &mut dyn Tx, order: i64) -> Result<Value, ApiError> {
    let Some(o) = tx.row(
        "SELECT id, user_id, status, total_cents FROM orders WHERE id = ?",
        &[order.into()],
    )?
    else {
        return err(404, format!("no order {order}"));
    };
    let items: Vec<Value> = tx
        .query("SELECT product_id, quantity, price_cents FROM order_items WHERE order_id = ? ORDER BY id", &[order.into()])?
        .into_iter()
        .map(|r| json!({"product_id": r[0].int(), "quantity": r[1].int(), "price_cents": r[2].int()}))
        .collect();
    let payment = tx
        .row("SELECT method, amount_cents, reference FROM payments WHERE order_id = ?", &[order.into()])?
        .map(|r| json!({"method": r[0].text(), "amount_cents": r[1].int(), "reference": r[2].text()}));
    Ok(json!({
        "id": o[0].int(),
        "user_id": o[1].int(),
        "status": o[2].text(),
        "total_cents": o[3].int(),
        "items": items,
        "payment": payment,
    }))
}

fn product_json(tx: &mut dyn Tx, id: i64) -> Result<Value, ApiError> {
    match tx.row(
        "SELECT id, sku, name, price_cents, stock FROM products WHERE id = ?",
        &[id.into()],
    )? {
        Some(r) => Ok(
            json!({"id": r[0].int(), "sku": r[1].text(), "name": r[2].text(), "price_cents": r[3].int(), "stock": r[4].int()}),
        ),
        None => err(404, format!("no product {id}")),
    }
}

fn parse(body: &str) -> Result<Value, ApiError> {
    if body.trim().is_empty() {
        return err(400, "a JSON body is required");
    }
    serde_json::from_str(body).map_err(|e| ApiError(400, format!("the body is not JSON: {e}")))
}

fn text(body: &Value, field: &str) -> Result<String, ApiError> {
    match body.get(field).and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => err(400, format!("{field} is required (a non-empty string)")),
    }
}

fn int(body: &Value, field: &str) -> Result<i64, ApiError> {
    body.get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError(400, format!("{field} is required (an integer)")))
}

fn new_token() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let a = h.finish();
    let mut h = RandomState::new().build_hasher();
    h.write_u64(a);
    format!("tok_{a:016x}{:016x}", h.finish())
}
