#![no_main]
//! The strict tar reader over arbitrary bytes: entries and their data, with the reader's own bounds. Nothing may
//! panic or allocate past what one entry's data read asks for.

use libfuzzer_sys::fuzz_target;
use lw_layer::tar::TarReader;

fuzz_target!(|data: &[u8]| {
    let mut r = TarReader::new(data);
    for _ in 0..10_000 {
        match r.next_entry() {
            Ok(Some(_)) => {
                let _ = r.read_to_vec(1 << 20);
            }
            _ => break,
        }
    }
});
