//! What the PostgreSQL benches share: the server's address and a schema dropped at the end.

/// `KARS_TEST_DATABASE_URL`, or the local socket's database `test`.
pub fn url() -> String {
    std::env::var("KARS_TEST_DATABASE_URL").unwrap_or_else(|_| "host=/var/run/postgresql dbname=test".to_owned())
}

/// A bench's schema, dropped when the bench ends.
pub struct Schema {
    /// Its name.
    pub name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            if let Ok((client, connection)) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await {
                tokio::spawn(connection);
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name)).await;
            }
        });
    }
}
