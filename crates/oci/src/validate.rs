//! Validation of OCI documents equivalent to the image-spec JSON schemas. (Being written; see issue 2.)
