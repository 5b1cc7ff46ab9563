//! The running application (being built).
