//! Ctrl-C (SIGINT) and SIGTERM raise one stop flag that the fit polls; a second signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

#[cfg(unix)]
mod sys {
    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;
    extern "C" {
        pub fn signal(signum: i32, handler: usize) -> usize;
        pub fn _exit(code: i32) -> !;
    }
}

#[cfg(unix)]
extern "C" fn on_signal(_: i32) {
    // Only async-signal-safe work here: an atomic swap, and _exit on the second signal.
    if let Some(flag) = FLAG.get() {
        if flag.swap(true, Ordering::SeqCst) {
            // SAFETY: _exit is async-signal-safe and takes no pointers.
            unsafe { sys::_exit(130) }
        }
    }
}

/// The stop flag, with the signal handlers installed on first use.
pub fn stop_flag() -> Arc<AtomicBool> {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))).clone();
    #[cfg(unix)]
    INSTALL.call_once(|| {
        // SAFETY: `on_signal` is an `extern "C" fn(i32)` that only touches the flag, which is initialized above,
        // before the handlers exist.
        unsafe {
            sys::signal(sys::SIGINT, on_signal as extern "C" fn(i32) as usize);
            sys::signal(sys::SIGTERM, on_signal as extern "C" fn(i32) as usize);
        }
    });
    flag
}
