//! A TCP proxy between a till and the server that can lose answers, reset connections mid-request
//! or be down, switched while it runs. Listens on 127.0.0.1 only.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Bytes pass both ways.
    Pass = 0,
    /// The request reaches the server; its answer is dropped and the till's connection closed.
    LoseAnswer = 1,
    /// A few bytes of the request reach the server, then both connections are closed.
    ResetMidRequest = 2,
    /// Connections are accepted and closed at once: the server looks down.
    Down = 3,
}

pub struct Proxy {
    pub addr: SocketAddr,
    fault: Arc<AtomicU8>,
    /// Answers dropped so far.
    pub lost: Arc<AtomicUsize>,
    /// Answers still let through before every later one is lost; negative: no limit.
    budget: Arc<AtomicI64>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fault = Arc::new(AtomicU8::new(Fault::Pass as u8));
        let lost = Arc::new(AtomicUsize::new(0));
        let budget = Arc::new(AtomicI64::new(-1));
        let (f, l, b) = (Arc::clone(&fault), Arc::clone(&lost), Arc::clone(&budget));
        std::thread::Builder::new()
            .name("proxy-accept".to_string())
            .spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    if f.load(Ordering::SeqCst) == Fault::Down as u8 {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(upstream) else {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    pump(client, server, Arc::clone(&f), Arc::clone(&l), Arc::clone(&b));
                }
            })
            .unwrap();
        Proxy {
            addr,
            fault,
            lost,
            budget,
        }
    }

    pub fn set(&self, fault: Fault) {
        self.budget.store(-1, Ordering::SeqCst);
        self.fault.store(fault as u8, Ordering::SeqCst);
    }

    /// Passes `n` answers (small answers come in one read each), then loses every later one.
    pub fn lose_answers_after(&self, n: i64) {
        self.budget.store(n, Ordering::SeqCst);
        self.fault.store(Fault::Pass as u8, Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn pump(client: TcpStream, server: TcpStream, fault: Arc<AtomicU8>, lost: Arc<AtomicUsize>, budget: Arc<AtomicI64>) {
    let (mut c_read, mut c_write) = (client.try_clone().unwrap(), client);
    let (mut s_read, mut s_write) = (server.try_clone().unwrap(), server);
    let (c_close, s_close) = (c_write.try_clone().unwrap(), s_write.try_clone().unwrap());
    let f = Arc::clone(&fault);
    std::thread::Builder::new()
        .name("proxy-up".to_string())
        .spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                let n = match c_read.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                match f.load(Ordering::SeqCst) {
                    x if x == Fault::ResetMidRequest as u8 => {
                        let _ = s_write.write_all(&buf[..n.min(12)]);
                        break;
                    }
                    // A connection kept from before the server went away breaks too.
                    x if x == Fault::Down as u8 => break,
                    _ => {}
                }
                if s_write.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = s_write.shutdown(Shutdown::Both);
            let _ = c_close.shutdown(Shutdown::Both);
        })
        .unwrap();
    std::thread::Builder::new()
        .name("proxy-down".to_string())
        .spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                let n = match s_read.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let spent = budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| (b > 0).then(|| b - 1))
                    .is_err()
                    && budget.load(Ordering::SeqCst) == 0;
                if spent || fault.load(Ordering::SeqCst) == Fault::LoseAnswer as u8 {
                    lost.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                if c_write.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = c_write.shutdown(Shutdown::Both);
            let _ = s_close.shutdown(Shutdown::Both);
        })
        .unwrap();
}
