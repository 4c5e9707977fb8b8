//! Which resources the server serves: a fixed set of built-in ones plus, dynamically, every
//! served version of every CustomResourceDefinition in the store. Discovery, OpenAPI, routing
//! and the table printer all read this one list, so creating a CRD makes its resources appear
//! everywhere at once (the real server needs a moment to mark it Established; this is instant).

use serde_json::{Value, json};

use super::events;

/// How a resource's objects are stored and shown; built-ins differ in small, specific ways.
#[derive(Clone, Debug, PartialEq)]
pub enum Flavor {
    Namespace,
    Crd,
    Lease,
    /// `core/v1` Events: a converted view of the same objects as `events.k8s.io/v1`.
    CoreEvent,
    Event,
    Custom(Box<Custom>),
}

/// What a custom resource takes from its CRD.
#[derive(Clone, Debug, PartialEq)]
pub struct Custom {
    pub crd: String,
    /// The CRD's `openAPIV3Schema` for this version (defaulting and `kubectl explain`).
    pub schema: Option<Value>,
    pub printer_columns: Vec<Value>,
    /// The CRD is being deleted: the real server then refuses new objects.
    pub terminating: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// Objects of every version (and both Event views) share one storage key.
    pub storage: String,
    pub flavor: Flavor,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group`, the name kubectl shows in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group`, the name used in validation messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn custom(&self) -> Option<&Custom> {
        match &self.flavor {
            Flavor::Custom(c) => Some(c),
            _ => None,
        }
    }

    pub fn is_custom(&self) -> bool {
        self.custom().is_some()
    }

    /// Custom resources and CRDs carry `metadata.generation`; leases, events and namespaces
    /// do not (their registry strategies never set it).
    pub fn has_generation(&self) -> bool {
        matches!(self.flavor, Flavor::Custom(_) | Flavor::Crd)
    }

    /// Custom resources and CRDs refuse a PUT without `metadata.resourceVersion`
    /// (`AllowUnconditionalUpdate` is false for them).
    pub fn requires_resource_version_on_update(&self) -> bool {
        matches!(self.flavor, Flavor::Custom(_) | Flavor::Crd)
    }

    /// Only the custom resource store answers an immediate DELETE with the object; the
    /// others answer a `Status` of success.
    pub fn returns_deleted_object(&self) -> bool {
        matches!(self.flavor, Flavor::Custom(_) | Flavor::Namespace)
    }

    /// The object as stored → the object as this group/version shows it.
    pub fn to_view(&self, stored: &Value) -> Value {
        match &self.flavor {
            Flavor::CoreEvent => events::to_core(stored),
            Flavor::Custom(c) => {
                // Conversion strategy `None`: only apiVersion changes between versions.
                let mut v = stored.clone();
                v["apiVersion"] = json!(self.api_version());
                if let Some(schema) = &c.schema {
                    // The real server defaults on read too, so objects stored before a
                    // default was added still show it.
                    super::defaults::apply(&mut v, schema);
                }
                v
            }
            _ => stored.clone(),
        }
    }

    /// The object as sent to this group/version → the object to store.
    pub fn to_stored(&self, view: Value) -> Value {
        match &self.flavor {
            Flavor::CoreEvent => events::from_core(view),
            _ => view,
        }
    }

    /// Subresources besides `status` that the resource has (namespaces' `finalize`).
    pub fn extra_subresources(&self) -> &'static [&'static str] {
        match self.flavor {
            Flavor::Namespace => &["finalize"],
            _ => &[],
        }
    }
}

fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short_names: &[&str],
    flavor: Flavor,
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        status_subresource: matches!(flavor, Flavor::Namespace | Flavor::Crd),
        storage: match flavor {
            // One store for both Event APIs, as in the real server.
            Flavor::CoreEvent | Flavor::Event => "events".into(),
            _ => format!("{group}/{plural}"),
        },
        flavor,
    }
}

pub fn builtins() -> Vec<ResourceDef> {
    let mut crd = builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        Flavor::Crd,
    );
    crd.categories = vec!["api-extensions".into()];
    vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            Flavor::Namespace,
        ),
        builtin(
            "",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            Flavor::CoreEvent,
        ),
        crd,
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            Flavor::Lease,
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            Flavor::Event,
        ),
    ]
}

/// Where CRDs themselves are stored.
pub const CRD_STORAGE: &str = "apiextensions.k8s.io/customresourcedefinitions";

/// Where namespaces are stored.
pub const NAMESPACE_STORAGE: &str = "/namespaces";

/// The storage key of a CRD's objects.
pub fn custom_storage(group: &str, plural: &str) -> String {
    format!("{group}/{plural}")
}

/// One definition per served version of a stored CRD.
pub fn from_crd(crd: &Value) -> Vec<ResourceDef> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let (Some(group), Some(plural), Some(kind)) = (
        spec["group"].as_str(),
        names["plural"].as_str(),
        names["kind"].as_str(),
    ) else {
        return vec![];
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let terminating = !crd["metadata"]["deletionTimestamp"].is_null();
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .filter_map(|v| {
            Some(ResourceDef {
                group: group.into(),
                version: v["name"].as_str()?.into(),
                plural: plural.into(),
                singular: names["singular"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| kind.to_lowercase()),
                kind: kind.into(),
                list_kind: names["listKind"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| format!("{kind}List")),
                namespaced: spec["scope"].as_str() == Some("Namespaced"),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                status_subresource: v["subresources"]["status"].is_object(),
                storage: custom_storage(group, plural),
                flavor: Flavor::Custom(Box::new(Custom {
                    crd: crd["metadata"]["name"].as_str().unwrap_or_default().into(),
                    schema: v["schema"].get("openAPIV3Schema").cloned(),
                    printer_columns: v["additionalPrinterColumns"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                    terminating,
                })),
            })
        })
        .collect()
}

/// Kubernetes version ordering (v1 > v1beta2 > v1beta1 > v1alpha1 > anything else), used to
/// pick a group's preferred version as the real server does for CRDs.
pub fn version_priority(version: &str) -> (u8, u8, u64, u64, String) {
    let parse = |rest: &str| -> Option<(u64, u8, u64)> {
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 3, 0));
        }
        let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
            (2, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (1, n)
        } else {
            return None;
        };
        Some((major, level, num.parse().ok()?))
    };
    match version.strip_prefix('v').and_then(parse) {
        // Higher sorts first, so invert the numbers.
        Some((major, level, minor)) => (
            0,
            3 - level,
            u64::MAX - major,
            u64::MAX - minor,
            String::new(),
        ),
        None => (1, 0, 0, 0, version.to_string()),
    }
}
