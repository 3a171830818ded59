//! One conformance suite for every `ServerStore` backend (filled next).
