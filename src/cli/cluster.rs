//! A series in the cluster as kubectl sees it: the kubeconfig (`KUBECONFIG` or
//! `~/.kube/config`), its current context or `--context`, the context's namespace or `-n`.

use kube::api::{Api, Patch, PatchParams};

use crate::cli::CliError;
use crate::model::spec::SimulationSeries;

/// The user agent of the commands' requests.
const USER_AGENT: &str = concat!("kubectl-simseries/", env!("CARGO_PKG_VERSION"));

/// The series API of one namespace of one cluster.
pub struct ClusterSeries {
    pub api: Api<SimulationSeries>,
    pub namespace: String,
}

/// A client of the cluster a kubeconfig names (`file`, else `KUBECONFIG` or
/// `~/.kube/config`) in `context` (else its current one), and that context's namespace.
pub async fn connect(
    file: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<(kube::Client, String), CliError> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let unreadable = |e: kube::config::KubeconfigError| CliError::Kubeconfig(e.to_string());
    let mut config = match file {
        Some(file) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(file).map_err(unreadable)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(unreadable)?
        }
        None => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(unreadable)?,
    };
    // Audit logs (and the controller's least-privilege test) tell the user's commands from
    // the controller by this.
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(CliError::Kube)?;
    Ok((client, namespace))
}

impl ClusterSeries {
    pub async fn connect(
        namespace: Option<&str>,
        context: Option<&str>,
    ) -> Result<ClusterSeries, CliError> {
        let (client, default_namespace) = connect(None, context).await?;
        let namespace = namespace.map_or(default_namespace, str::to_string);
        Ok(ClusterSeries {
            api: Api::namespaced(client, &namespace),
            namespace,
        })
    }

    /// The series `name`, or an error that names it and its namespace.
    pub async fn get(&self, name: &str) -> Result<SimulationSeries, CliError> {
        self.api
            .get_opt(name)
            .await
            .map_err(CliError::Kube)?
            .ok_or_else(|| CliError::NotFound {
                name: name.to_string(),
                namespace: self.namespace.clone(),
            })
    }

    /// Sets `annotation` on series `name` (a merge patch, as `kubectl annotate --overwrite`).
    pub async fn annotate(
        &self,
        name: &str,
        annotation: &str,
        value: &str,
    ) -> Result<(), CliError> {
        self.get(name).await?;
        let patch = serde_json::json!({"metadata": {"annotations": {annotation: value}}});
        self.api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(CliError::Kube)?;
        Ok(())
    }
}
