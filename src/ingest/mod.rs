//! Getting punches in from terminals.
//!
//! [`decode`] turns the bytes a terminal sends (MQTT payloads, HTTP push
//! bodies, serial lines, USB exports) into punches. It is pure: the MQTT,
//! serial and HTTP adapters own the I/O and pass bytes, the arrival time and
//! what they know about the device.

pub mod decode;
