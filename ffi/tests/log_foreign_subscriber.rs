//! A host that installed its own global tracing subscriber: the SDK refuses the
//! log callback before installing anything, and the refused callback's cleanup
//! hook never runs (the caller keeps its ctx). Its own process, since the global
//! subscriber can be set only once.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

use peat_mesh_ffi::{peat_log_clear_callback, peat_log_set_callback, ErrorCode, PeatLogCallback};

static DROPS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_drop(_ctx: *mut c_void) {
    DROPS.fetch_add(1, Ordering::SeqCst);
}

struct RustSink(std::sync::Arc<AtomicUsize>);

impl peat_mesh_ffi::dispatch::EventSink for RustSink {
    fn on_event(&self, _event: &peat_mesh_ffi::records::SubEvent) {}
}

impl Drop for RustSink {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn log_callback_is_refused_before_install_when_another_subscriber_exists() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry())
        .expect("the test's own subscriber");
    let cb = PeatLogCallback {
        ctx: std::ptr::null_mut(),
        on_log: None,
        on_drop: Some(count_drop),
    };
    // SAFETY: a callback with NULL ctx and a valid cleanup hook; NULL err.
    let rc = unsafe { peat_log_set_callback(cb, 3, std::ptr::null_mut()) };
    assert_eq!(rc, ErrorCode::InvalidArgument as i32);
    assert_eq!(
        DROPS.load(Ordering::SeqCst),
        0,
        "on_drop ran for a refused callback"
    );
    // SAFETY: NULL err is allowed.
    assert_eq!(unsafe { peat_log_clear_callback(std::ptr::null_mut()) }, 0);
    assert_eq!(
        DROPS.load(Ordering::SeqCst),
        0,
        "a refused callback was installed"
    );

    // The Rust-level call refuses the same way (dropping the sink it was given).
    let dropped = std::sync::Arc::new(AtomicUsize::new(0));
    let e = peat_mesh_ffi::log::set_log_sink(Box::new(RustSink(dropped.clone())), 3).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    peat_mesh_ffi::log::clear_log_sink();
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}
