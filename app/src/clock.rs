//! The page's clock and visibility, the one place the chat and the calls ask the browser
//! for them: now, the local calendar day of a moment, whether the page is on screen, a pause. On the
//! server (rendering) there is no clock: 0, the UTC day, visible.

/// Milliseconds since the epoch (the browser's clock; 0 on the server).
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}

/// The calendar day of `unix_ms` in the browser's time zone, as (year, month, day).
pub fn local_day(unix_ms: i64) -> (i32, u32, u32) {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix_ms as f64));
        (
            date.get_full_year() as i32,
            date.get_month(),
            date.get_date(),
        )
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let days = unix_ms.div_euclid(86_400_000);
        (0, 0, days as u32)
    }
}

/// Whether the page is on screen (a hidden tab gets notifications instead).
pub fn page_visible() -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| !d.hidden())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        true
    }
}

/// Waits `ms` milliseconds (in the browser; at once elsewhere).
pub async fn sleep(ms: u32) {
    #[cfg(feature = "hydrate")]
    {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(window) = web_sys::window() {
                let _ = window
                    .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ms;
}
