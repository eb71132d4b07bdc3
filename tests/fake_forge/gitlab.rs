//! The GitLab flavour of the fake forge (see github.rs).
