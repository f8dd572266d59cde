//! Registry credentials from docker config.json and credential helpers (being written).
