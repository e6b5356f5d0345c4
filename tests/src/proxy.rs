//! A TCP proxy in front of Redis that a test can turn against its clients: swallow every
//! reply (commands still reach Redis and run) and cut every open connection. It stages the
//! failure a real network makes at the worst moment: a write that happened, whose reply
//! never arrived.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy listening on a free loopback port; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    drop_replies: Arc<AtomicBool>,
    blackhole: Arc<AtomicBool>,
    refusing: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    trigger: Trigger,
    accept: tokio::task::JoinHandle<()>,
}

/// Text that, once seen in a request, takes the proxy down right after that request's reply
/// went through ([`Proxy::down_after_reply_to`]).
type Trigger = Arc<Mutex<Option<Vec<u8>>>>;

/// What a connection shares with the proxy to go down on a trigger.
#[derive(Clone)]
struct Downing {
    trigger: Trigger,
    refusing: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Proxy {
    /// Starts a proxy to the Redis at `target` (`host:port`).
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let drop_replies = Arc::new(AtomicBool::new(false));
        let blackhole = Arc::new(AtomicBool::new(false));
        let refusing = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let trigger: Trigger = Arc::default();
        let downing = Downing {
            trigger: trigger.clone(),
            refusing: refusing.clone(),
            cuts: cuts.clone(),
        };
        let accept = tokio::spawn({
            let target = target.to_string();
            let drop_replies = drop_replies.clone();
            let blackhole = blackhole.clone();
            let refusing = refusing.clone();
            let cuts = cuts.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if refusing.load(Ordering::SeqCst) {
                        // closed at once, as a Redis that is down
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(&target).await else {
                        continue;
                    };
                    tokio::spawn(pipe(
                        client,
                        server,
                        drop_replies.clone(),
                        blackhole.clone(),
                        cuts.subscribe(),
                        downing.clone(),
                    ));
                }
            }
        });
        Proxy {
            addr,
            drop_replies,
            blackhole,
            refusing,
            cuts,
            trigger,
            accept,
        }
    }

    /// Redis goes down (as [`Proxy::down`]) right after it answered the first request that
    /// holds `text`: a client sees its write succeed and the next call fail.
    pub fn down_after_reply_to(&self, text: &str) {
        *self.trigger.lock().unwrap() = Some(text.as_bytes().to_vec());
    }

    /// `redis://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// While on, commands reach Redis but their replies are thrown away.
    pub fn drop_replies(&self, on: bool) {
        self.drop_replies.store(on, Ordering::SeqCst);
    }

    /// While on, no byte moves either way (a network partition): connections stay open,
    /// what is sent waits, as TCP holds it, and goes through once the partition ends.
    pub fn partition(&self, on: bool) {
        self.blackhole.store(on, Ordering::SeqCst);
    }

    /// While on, Redis looks down: every connection is closed, and each new one at once.
    pub fn down(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
        if on {
            self.cut();
        }
    }

    /// Closes every connection open now (new ones are accepted as before).
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Copies bytes both ways until either side closes or the proxy cuts the connection.
async fn pipe(
    client: TcpStream,
    server: TcpStream,
    drop_replies: Arc<AtomicBool>,
    blackhole: Arc<AtomicBool>,
    mut cuts: watch::Receiver<u64>,
    downing: Downing,
) {
    // a request of this connection held the trigger: down once its reply went through
    let armed = AtomicBool::new(false);
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let requests = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            hold(&blackhole).await;
            match client_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    hold(&blackhole).await;
                    {
                        let mut trigger = downing.trigger.lock().unwrap();
                        if let Some(t) = trigger.as_deref() {
                            if buf[..n].windows(t.len()).any(|w| w == t) {
                                armed.store(true, Ordering::SeqCst);
                                *trigger = None;
                            }
                        }
                    }
                    if server_wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let replies = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            hold(&blackhole).await;
            match server_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    hold(&blackhole).await;
                    if drop_replies.load(Ordering::SeqCst) {
                        continue;
                    }
                    if client_wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if armed.load(Ordering::SeqCst) {
                        downing.refusing.store(true, Ordering::SeqCst);
                        downing.cuts.send_modify(|n| *n += 1);
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = requests => {}
        _ = replies => {}
        _ = cuts.changed() => {}
    }
}

/// Waits while a partition is on.
async fn hold(partition: &AtomicBool) {
    while partition.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
