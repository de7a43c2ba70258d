//! Palisade's criterion benches live in `benches/`; see `README.md` beside this file for how to
//! run them and the numbers measured.
