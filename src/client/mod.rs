//! Browser-only code: the live socket and what the browser remembers.

pub mod attention;
pub mod audit;
pub mod claim;
pub mod socket;
pub mod storage;

/// A random id for an outgoing message (about 80 bits from the browser's RNG plus the time).
pub fn new_client_id() -> String {
    let mut bytes = [0u8; 10];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok())
        .unwrap_or(false);
    if !filled {
        for b in bytes.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{:x}-{hex}", js_sys::Date::now() as u64)
}
