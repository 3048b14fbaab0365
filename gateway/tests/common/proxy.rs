//! A TCP proxy the test controls, in front of a shared service (Redis, PostgreSQL): it forwards,
//! or it cuts every connection and then holds new ones without answering (a service that is
//! down or hangs) — the machine's own service is never touched.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    /// Bumped at every cut: forwarded connections end when it changes.
    generation: watch::Sender<u64>,
    up: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a random port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (generation, _) = watch::channel(0u64);
        let up = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn({
            let generation = generation.clone();
            let up = up.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let mut cut = generation.subscribe();
                    let up = up.load(Ordering::SeqCst);
                    tokio::spawn(async move {
                        if !up {
                            // Down: hold the connection, answer nothing, until the next cut or
                            // restore ends it.
                            let _ = cut.changed().await;
                            drop(client);
                            return;
                        }
                        let Ok(server) = TcpStream::connect(target).await else {
                            return;
                        };
                        let (mut client, mut server) = (client, server);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            }
        });
        Proxy {
            addr,
            generation,
            up,
            task,
        }
    }

    /// Cuts every connection; new ones are held unanswered until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Forwards again (the held connections are closed, so clients reconnect).
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}
