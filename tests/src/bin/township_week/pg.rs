//! PostgreSQL helpers for the load benchmark, through the `psql` client (this crate does not
//! link a PostgreSQL driver): the settings in force, the size of a schema, the CPU time of
//! the database's processes, and dropping a run's schema.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use super::server::cpu_seconds;
use super::Res;

/// `psql URL -tAc SQL`, its output trimmed.
pub fn psql(url: &str, sql: &str) -> Res<String> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-X", "-q", "-t", "-A", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if !out.status.success() {
        return Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A fresh schema name for one run (letters, digits, `_`: what `--schema` accepts).
pub fn fresh_schema(tag: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("tw_load_{tag}_{}_{ms}", std::process::id())
}

/// The settings that matter for the figures, as `name=value` pairs.
pub fn settings(url: &str) -> Res<String> {
    let rows = psql(
        url,
        "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) \
         FROM pg_settings WHERE name IN ('server_version', 'shared_buffers', 'fsync', \
         'synchronous_commit', 'full_page_writes', 'wal_level', 'max_connections', \
         'work_mem', 'effective_io_concurrency', 'max_wal_size', 'checkpoint_timeout')",
    )?;
    Ok(rows)
}

/// Bytes of the schema's tables with their indexes and TOAST.
pub fn schema_bytes(url: &str, schema: &str) -> Res<u64> {
    let v = psql(
        url,
        &format!(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'm')"
        ),
    )?;
    Ok(v.parse()?)
}

/// Drop a run's schema and everything in it.
pub fn drop_schema(url: &str, schema: &str) -> Res<()> {
    psql(url, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
    Ok(())
}

/// The postmaster's pid: the first line of `postmaster.pid` in the data directory (the
/// database must run on this machine, readable by this user).
pub fn postmaster_pid(url: &str) -> Res<u32> {
    let dir = psql(url, "SHOW data_directory")?;
    let pidfile = std::fs::read_to_string(Path::new(&dir).join("postmaster.pid"))?;
    Ok(pidfile
        .lines()
        .next()
        .ok_or("empty postmaster.pid")?
        .trim()
        .parse()?)
}

/// CPU seconds of each child of `ppid` (the backends, WAL writer, checkpointer…).
pub fn children_cpu(ppid: u32) -> HashMap<u32, f64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let parent = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(ppid) {
            if let Some(cpu) = cpu_seconds(&pid.to_string()) {
                out.insert(pid, cpu);
            }
        }
    }
    out
}

/// CPU the database spent between two [`children_cpu`] readings (processes that started in
/// between count from zero; ones that ended in between are missed).
pub fn cpu_between(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, a)| a - before.get(pid).copied().unwrap_or(0.0))
        .filter(|d| *d > 0.0)
        .sum()
}

/// Proportional resident memory (kB, `Pss` of `/proc/<pid>/smaps_rollup`) of the
/// database's processes, summed: shared buffers are split between the processes that
/// touched them, so they count once.
pub fn children_pss_kb(ppid: u32) -> u64 {
    children_cpu(ppid)
        .keys()
        .filter_map(|pid| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
            s.lines()
                .find(|l| l.starts_with("Pss:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum()
}
