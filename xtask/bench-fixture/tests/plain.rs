include!(concat!(env!("OUT_DIR"), "/plain.rs"));
