//! The emulated clock: `emulated_now = anchor + elapsed_real × speed`. Changing the speed
//! re-anchors, so emulated time never jumps backwards.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One reading of both clocks, taken once per request or tick.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    /// Real wall time, ms since the Unix epoch.
    pub wall_ms: i64,
    /// Emulated time, ms since the Unix epoch.
    pub emu_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Clock {
    anchor_real: Instant,
    anchor_emu_ms: f64,
    speed: f64,
}

pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Clock {
    /// Starts emulated time at the current wall time.
    pub fn new(speed: f64) -> Self {
        Clock {
            anchor_real: Instant::now(),
            anchor_emu_ms: wall_ms() as f64,
            speed: sanitize(speed),
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn now(&self) -> Now {
        let instant = Instant::now();
        let elapsed = instant.duration_since(self.anchor_real).as_secs_f64() * 1000.0;
        Now {
            instant,
            wall_ms: wall_ms(),
            emu_ms: (self.anchor_emu_ms + elapsed * self.speed) as i64,
        }
    }

    pub fn set_speed(&mut self, speed: f64) {
        let instant = Instant::now();
        let elapsed = instant.duration_since(self.anchor_real).as_secs_f64() * 1000.0;
        self.anchor_emu_ms += elapsed * self.speed;
        self.anchor_real = instant;
        self.speed = sanitize(speed);
    }
}

fn sanitize(speed: f64) -> f64 {
    if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    }
}
