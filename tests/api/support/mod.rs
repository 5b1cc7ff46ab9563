//! The end-to-end harness: real programs around the app. `e2e` decides whether a test can
//! run here, `browser` drives headless Chromium over WebDriver, `nginx` runs a real nginx,
//! `caddy` a real Caddy, `echo` is the upstream app that shows what reached it,
//! and `serve` starts any small axum router a test needs as a page or an upstream.

// A toolbox shared by every test file: not each helper has a user in every build.
#![allow(dead_code)]

pub mod browser;
pub mod caddy;
pub mod e2e;
pub mod echo;
pub mod nginx;
pub mod postgres;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

/// Serve `router` on a free loopback port for the rest of the test; returns its address
/// (`http://127.0.0.1:PORT` is `format!("http://{addr}")`).
pub async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

/// The live (not zombie) processes for which `keep(pid, parent, process_group)` holds, read
/// from `/proc`: to prove that a harness left nothing running.
pub fn live_processes(keep: impl Fn(u32, u32, u32) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u32>().ok());
            match (fields.first(), number(1), number(2)) {
                (Some(&state), Some(parent), Some(group)) => {
                    state != "Z" && state != "X" && keep(pid, parent, group)
                }
                _ => false,
            }
        })
        .collect()
}

/// Poll until `done` holds, for at most `timeout`; whether it did.
pub fn eventually(timeout: std::time::Duration, done: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
