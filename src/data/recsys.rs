//! `recsys`: a generated recommender log whose structure is known. Each row is one item shown
//! to one user on one device at one hour of the day, at a price. Users and items have four
//! latent factors u, v ~ N(0, 1) and biases b ~ N(0, 0.5²):
//!
//! - click (binary, every row): logit −1 + b_u + b_i + u₀v₀ + u₁v₁ + device (mobile +0.3,
//!   desktop 0, tablet −0.3) + 0.5·sin(2π·hour/24);
//! - conversion (binary, only where clicked; empty elsewhere): logit −0.5 + u₂v₂ + u₃v₃ +
//!   device (mobile −0.4, desktop +0.3, tablet 0) − 0.8·(ln price − 3);
//! - dwell (seconds, only where clicked): 20 + 4·(u₀v₀ + u₁v₁ + u₂v₂ + u₃v₃) + N(0, 5²);
//! - purchase = click · conversion (every row): ESMM's click-and-convert label.
//!
//! Columns: user (`u17`), item (`i42`), device (text), hour (0–23), price, then the labels. An
//! item's price is e^{N(3, 0.5²)}, each showing within ±10% of it. Clicks and conversions
//! are drawn from their probabilities, so the factors behind each task can be checked.

use super::table::Table;
use crate::rng::Rng;

/// Users and items of the generator.
pub const USERS: usize = 300;
/// Items.
pub const ITEMS: usize = 150;

struct Entity {
    f: [f64; 4],
    bias: f64,
}

fn entities(n: usize, rng: &mut Rng) -> Vec<Entity> {
    (0..n)
        .map(|_| Entity { f: [rng.normal(), rng.normal(), rng.normal(), rng.normal()], bias: 0.5 * rng.normal() })
        .collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `rows` impressions, seeded.
pub fn recsys(rows: usize, seed: u64) -> crate::error::Result<Table> {
    let mut rng = Rng::new(seed ^ 0x5ec5);
    let users = entities(USERS, &mut rng);
    let items = entities(ITEMS, &mut rng);
    let base_price: Vec<f64> = (0..ITEMS).map(|_| (3.0 + 0.5 * rng.normal()).exp()).collect();
    let devices = [("mobile", 0.3, -0.4), ("desktop", 0.0, 0.3), ("tablet", -0.3, 0.0)];
    let header: Vec<String> = ["user", "item", "device", "hour", "price", "click", "conversion", "dwell", "purchase"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        let (u, i) = ((rng.next_u64() % USERS as u64) as usize, (rng.next_u64() % ITEMS as u64) as usize);
        let (name, d_click, d_conv) = devices[(rng.next_u64() % 3) as usize];
        let hour = rng.next_u64() % 24;
        let price = base_price[i] * rng.range(0.9, 1.1);
        let (fu, fi) = (&users[u].f, &items[i].f);
        let dot = |k: usize| fu[k] * fi[k];
        let click_logit = -1.0
            + users[u].bias
            + items[i].bias
            + dot(0)
            + dot(1)
            + d_click
            + 0.5 * (2.0 * std::f64::consts::PI * hour as f64 / 24.0).sin();
        let click = rng.range(0.0, 1.0) < sigmoid(click_logit);
        let conv_logit = -0.5 + dot(2) + dot(3) + d_conv - 0.8 * (price.ln() - 3.0);
        let conversion = click && rng.range(0.0, 1.0) < sigmoid(conv_logit);
        let dwell = 20.0 + 4.0 * (dot(0) + dot(1) + dot(2) + dot(3)) + 5.0 * rng.normal();
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        out.push(vec![
            format!("u{u}"),
            format!("i{i}"),
            name.to_string(),
            hour.to_string(),
            format!("{price:.2}"),
            flag(click),
            if click { flag(conversion) } else { String::new() },
            if click { format!("{dwell:.1}") } else { String::new() },
            flag(conversion),
        ]);
    }
    Table::from_rows("<built-in recsys>", header, out)
}
