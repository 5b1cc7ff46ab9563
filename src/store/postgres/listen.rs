//! Cross-replica cache coherence: a dedicated connection LISTENs on the commit channel (and
//! the channels of [`crate::store::StoreEvent`]s); every notification from another process
//! bumps the commit epoch, so the commit-coherent caches ([`crate::store::cache`]) drop what
//! they read before it. While the connection is down the backend reports itself incoherent
//! (caches are bypassed), and after it is back the epoch is bumped once more, since
//! notifications sent meanwhile are lost.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::AsyncMessage;

use super::{COMMIT_CHANNEL, Shared};
use crate::config::PgDatabase;
use crate::store::StoreEvent;

/// Channels carried to [`crate::store::Store::events`] besides the commit channel.
pub const EVENT_CHANNELS: &[&str] = &["teamgate_config"];

/// Pause before reconnecting.
const RETRY: Duration = Duration::from_millis(500);

/// What the listener updates.
pub struct Sink {
    epoch: Arc<AtomicU64>,
    coherent: Arc<AtomicBool>,
    origin: String,
    events: tokio::sync::broadcast::Sender<StoreEvent>,
}

impl From<&Arc<Shared>> for Sink {
    fn from(s: &Arc<Shared>) -> Self {
        Sink {
            epoch: s.epoch.clone(),
            coherent: s.coherent.clone(),
            origin: s.origin.clone(),
            events: s.events.clone(),
        }
    }
}

pub fn start(
    rt: &tokio::runtime::Handle,
    db: PgDatabase,
    sink: Sink,
) -> tokio::task::JoinHandle<()> {
    rt.spawn(async move {
        let mut first = true;
        loop {
            match listen_once(&db, &sink, first).await {
                Ok(()) => tracing::warn!("the PostgreSQL notification connection closed"),
                Err(e) => {
                    tracing::warn!(error = %e, "the PostgreSQL notification connection failed")
                }
            }
            first = false;
            sink.coherent.store(false, Ordering::Release);
            sink.epoch.fetch_add(1, Ordering::AcqRel);
            tokio::time::sleep(RETRY).await;
        }
    })
}

async fn listen_once(db: &PgDatabase, sink: &Sink, first: bool) -> Result<(), String> {
    let (client, mut poll) = super::connect::connect_one(db).await?;
    let mut sql = format!("LISTEN {COMMIT_CHANNEL};");
    for channel in EVENT_CHANNELS {
        sql.push_str(&format!(" LISTEN {channel};"));
    }
    // The LISTEN needs the connection driven while it runs.
    let listen = client.batch_execute(&sql);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done.map_err(|e| e.to_string())?;
                listening = true;
                // Anything committed before now is visible to the next read: drop the caches
                // once, then trust them again.
                sink.epoch.fetch_add(1, Ordering::AcqRel);
                sink.coherent.store(true, Ordering::Release);
                if !first {
                    tracing::info!("the PostgreSQL notification connection is back");
                    let _ = sink.events.send(StoreEvent::Reconnected);
                }
            }
            message = poll_fn(|cx| poll(cx)) => match message {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if n.channel() == COMMIT_CHANNEL {
                        if n.payload() != sink.origin {
                            sink.epoch.fetch_add(1, Ordering::AcqRel);
                        }
                    } else {
                        let _ = sink.events.send(StoreEvent::Message {
                            channel: n.channel().to_owned(),
                            payload: n.payload().to_owned(),
                        });
                    }
                }
                Some(Ok(_)) => {}
            }
        }
    }
}
