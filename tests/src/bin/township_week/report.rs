//! Figures, printed as Markdown tables and written as JSON (same keys, same values).

use serde_json::{Map, Value};

#[derive(Debug, Default)]
pub struct Report {
    sections: Vec<(String, String, Vec<Row>)>,
}

#[derive(Debug)]
struct Row {
    key: String,
    label: String,
    value: Value,
    shown: String,
}

fn fmt_bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

impl Report {
    /// Start a section: `key` in JSON, `title` in the printed table.
    pub fn section(&mut self, key: &str, title: &str) {
        self.sections
            .push((key.to_owned(), title.to_owned(), Vec::new()));
    }

    fn push(&mut self, key: &str, label: &str, value: Value, shown: String) {
        if self.sections.is_empty() {
            self.section("run", "run");
        }
        if let Some((_, _, rows)) = self.sections.last_mut() {
            rows.push(Row {
                key: key.to_owned(),
                label: label.to_owned(),
                value,
                shown,
            });
        }
    }

    pub fn text(&mut self, key: &str, label: &str, v: impl Into<String>) {
        let v = v.into();
        self.push(key, label, Value::String(v.clone()), v);
    }

    pub fn int(&mut self, key: &str, label: &str, v: u64) {
        self.push(key, label, Value::from(v), v.to_string());
    }

    pub fn bool(&mut self, key: &str, label: &str, v: bool) {
        self.push(
            key,
            label,
            Value::from(v),
            if v { "yes" } else { "no" }.into(),
        );
    }

    pub fn bytes(&mut self, key: &str, label: &str, v: u64) {
        self.push(
            key,
            label,
            Value::from(v),
            format!("{} ({v} B)", fmt_bytes(v as f64)),
        );
    }

    pub fn secs(&mut self, key: &str, label: &str, v: f64) {
        let shown = if v.abs() < 1.0 {
            format!("{:.1} ms", v * 1e3)
        } else {
            format!("{v:.2} s")
        };
        self.push(key, label, num(v), shown);
    }

    pub fn ms(&mut self, key: &str, label: &str, v: f64) {
        self.push(key, label, num(v), format!("{v:.2} ms"));
    }

    pub fn ratio(&mut self, key: &str, label: &str, v: f64) {
        self.push(key, label, num(v), format!("{v:.2}×"));
    }

    pub fn float(&mut self, key: &str, label: &str, v: f64, unit: &str) {
        self.push(
            key,
            label,
            num(v),
            format!("{v:.1} {unit}").trim().to_owned(),
        );
    }

    pub fn kb(&mut self, key: &str, label: &str, kb: u64) {
        self.push(
            key,
            label,
            Value::from(kb),
            format!("{:.1} MB ({kb} kB)", kb as f64 / 1024.0),
        );
    }

    pub fn print(&self) {
        for (_, title, rows) in &self.sections {
            println!("\n### {title}\n");
            println!("| figure | value |");
            println!("|---|---|");
            for r in rows {
                println!("| {} | {} |", r.label, r.shown.replace('|', "/"));
            }
        }
        println!();
    }

    pub fn json(&self) -> Value {
        let mut top = Map::new();
        for (key, _, rows) in &self.sections {
            let mut m = Map::new();
            for r in rows {
                m.insert(r.key.clone(), r.value.clone());
            }
            top.insert(key.clone(), Value::Object(m));
        }
        Value::Object(top)
    }
}

fn num(v: f64) -> Value {
    serde_json::Number::from_f64((v * 1e6).round() / 1e6)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// p-th percentile (0..=100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
