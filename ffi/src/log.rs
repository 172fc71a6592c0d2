//! Forwarding the SDK's logs to the host: a tracing layer that queues each
//! record (up to a level) to a sink on the dispatcher thread. When the queue is
//! full, records are dropped rather than blocking the runtime.

use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::Level;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::dispatch::{try_push, EventSink, Push};
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::records::SubEvent;

struct Target {
    push: Arc<Push>,
    max: Level,
}

fn target() -> &'static Mutex<Option<Target>> {
    static T: OnceLock<Mutex<Option<Target>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(None))
}

fn level_number(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

struct HostLayer;

impl<S: tracing::Subscriber> Layer<S> for HostLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let guard = target().lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = guard.as_ref() else { return };
        let meta = event.metadata();
        if *meta.level() > t.max {
            return;
        }
        let mut msg = Message(String::new());
        event.record(&mut msg);
        let push = t.push.clone();
        drop(guard);
        try_push(
            &push,
            SubEvent::Log {
                level: level_number(meta.level()),
                target: meta.target().to_string(),
                message: msg.0,
            },
        );
    }
}

/// Sends log records at `max_level` (1 error … 5 trace) and above to `sink`,
/// replacing (and dropping) any previous sink. Installs the SDK's tracing layer
/// as the process default on first use.
///
/// Refuses, before installing anything (the previous sink stays), when the host
/// already installed another global tracing subscriber (`InvalidArgument`: the
/// SDK's records go there) or after `sdk::shutdown` (`ShutDown`).
pub fn set_log_sink(sink: Box<dyn EventSink>, max_level: u8) -> SdkResult<()> {
    if crate::runtime::is_shut_down() {
        return Err(SdkError::new(ErrorCode::ShutDown, "the SDK was shut down"));
    }
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    let installed = *INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(HostLayer))
            .is_ok()
    });
    if !installed {
        return Err(SdkError::invalid(
            "another tracing subscriber is already installed in this process; \
             the SDK's log records go to it",
        ));
    }
    let max = match max_level {
        0 | 1 => Level::ERROR,
        2 => Level::WARN,
        3 => Level::INFO,
        4 => Level::DEBUG,
        _ => Level::TRACE,
    };
    let old = target()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .replace(Target {
            push: Push::new(sink),
            max,
        });
    if let Some(old) = old {
        old.push.stop();
    }
    Ok(())
}

/// Stops forwarding logs and drops the sink.
pub fn clear_log_sink() {
    if let Some(old) = target().lock().unwrap_or_else(|p| p.into_inner()).take() {
        old.push.stop();
    }
}
