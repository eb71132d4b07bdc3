//! Simulation model files: every mistake gives a message with the file, the place and the fix.

#[test]
fn bad_model_files_say_what_to_fix() {
    let spec = kars::spec::load(include_str!("../workflows/kars-release.yaml"), "kars-release.yaml").unwrap();
    insta::glob!("simulate/models/*.yaml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = format!("models/{}", path.file_name().unwrap().to_string_lossy());
        let error = kars::workflow::sim::Model::load(&spec, &text, &name).expect_err("every fixture is invalid");
        insta::assert_snapshot!(error.to_string());
    });
}

#[test]
fn the_bundled_model_is_valid() {
    let spec = kars::spec::load(include_str!("../workflows/kars-release.yaml"), "kars-release.yaml").unwrap();
    kars::workflow::sim::Model::load(&spec, include_str!("../workflows/kars-release.model.yaml"), "model").unwrap();
}
