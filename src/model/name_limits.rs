//! Whether every name a series makes fits where it is written: a file name of at most 255 bytes
//! in a local working location (ext4, XFS, APFS, NTFS), an object key of at most 1,024 bytes on
//! S3. Checked before anything is written, since a name that does not fit is found otherwise
//! only by the models, when every child of a pass fails to write its outputs.
//!
//! Each name is measured at its longest: seeds print as four digits, an input's index as the
//! digits of the largest index its group can have, a pass number as ten digits.

use crate::model::layout::{self, MAX_ARRAY_SIZE};
use crate::model::spec::SimulationSeriesSpec;

/// What the names of one planned group are made of.
#[derive(Debug, Clone, Copy)]
pub struct GroupNames<'a> {
    pub name: &'a str,
    /// The series name for `_`, else `{name}_{group}`.
    pub key: &'a str,
    pub conditions: usize,
    /// Indices into `spec.series.inits`.
    pub inits: &'a [usize],
}

/// The longest file name (one path part) local file systems take.
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// The longest object key S3 takes.
pub const MAX_S3_KEY_BYTES: usize = 1024;

/// `YYYY-MM-DD`.
const DATE_BYTES: usize = 10;
/// `u32::MAX` printed: the longest pass number in `logs/pass-{n}/`.
const PASS_BYTES: usize = 10;
/// `{seed:04}` of seeds up to 9999.
const SEED_BYTES: usize = 4;

/// Where the names go: each path part is bounded locally, the whole key on S3 (where the
/// location's prefix is part of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameLimit {
    Local,
    S3 { prefix_bytes: usize },
}

impl NameLimit {
    /// The limit of the spec's working location.
    pub fn of(spec: &SimulationSeriesSpec) -> NameLimit {
        match spec.context.working_location.strip_prefix("s3://") {
            Some(rest) => {
                let prefix = rest
                    .split_once('/')
                    .map_or("", |(_, prefix)| prefix.trim_matches('/'));
                NameLimit::S3 {
                    // `{prefix}/` before each key.
                    prefix_bytes: if prefix.is_empty() {
                        0
                    } else {
                        prefix.len() + 1
                    },
                }
            }
            None => NameLimit::Local,
        }
    }

    /// Why a name made of `folder` (the key's folders, without a trailing `/`) and `file` does
    /// not fit, if it does not.
    fn refuse(self, folder: &[usize], file: usize) -> Option<String> {
        match self {
            NameLimit::Local => {
                let longest = folder.iter().copied().chain([file]).max().unwrap_or(0);
                (longest > MAX_FILE_NAME_BYTES).then(|| {
                    format!(
                        "{longest} bytes; a file or folder name in a local working location may have at most {MAX_FILE_NAME_BYTES}"
                    )
                })
            }
            NameLimit::S3 { prefix_bytes } => {
                let key = prefix_bytes + folder.iter().map(|part| part + 1).sum::<usize>() + file;
                (key > MAX_S3_KEY_BYTES).then(|| {
                    format!(
                        "a key of {key} bytes with the location's prefix; S3 keys may have at most {MAX_S3_KEY_BYTES}"
                    )
                })
            }
        }
    }
}

/// The names of `spec` that do not fit `limit`: (field, message naming the name and the fix).
pub fn names_that_do_not_fit(
    spec: &SimulationSeriesSpec,
    groups: &[GroupNames<'_>],
    limit: NameLimit,
) -> Vec<(String, String)> {
    let series = &spec.series;
    let name = series.name.len();
    let mut problems = Vec::new();
    // `what` is only printed for a name that does not fit: a series may have a million.
    let mut check = |field: &dyn Fn() -> String,
                     what: &dyn Fn() -> String,
                     folder: &[usize],
                     file: usize,
                     fix: &str| {
        if let Some(why) = limit.refuse(folder, file) {
            problems.push((field(), format!("{} would be {why}; {fix}", what())));
        }
    };

    // {name}/{date}/outputs/{name}_{key}_{seed:04}.{extension}, written by the model.
    let extension = series.extensions.iter().map(String::len).max().unwrap_or(0);
    for (i, condition) in series.conditions.iter().enumerate() {
        let file = name + 1 + condition.key.len() + 1 + SEED_BYTES + 1 + extension;
        check(
            &|| format!("spec.series.conditions[{i}].key"),
            &|| {
                format!(
                    "the output {}.{{extension}}",
                    layout::run_key(&series.name, &condition.key, 0)
                )
            },
            &[name, DATE_BYTES, "outputs".len()],
            file,
            "shorten the condition key (or the series name or the longest extension)",
        );
    }

    for group in groups {
        let field = || {
            if group.name == layout::DEFAULT_GROUP {
                "spec.series.name".to_string()
            } else {
                format!("spec.series.groups.{}", group.name)
            }
        };
        // At most one input per run; a group past MAX_ARRAY_SIZE inputs is cut into parts.
        let runs = group.conditions * series.seeds.len().max(1);
        let parts = runs.div_ceil(MAX_ARRAY_SIZE);
        let file_set = if parts > 1 {
            layout::file_set_name(group.key, parts - 1).len()
        } else {
            group.key.len()
        };
        let index = digits(runs.clamp(1, MAX_ARRAY_SIZE) - 1);
        // {name}/{date}/inputs/{fileSetName}_{index}.xml and the same name `.log` in
        // {name}/{date}/logs/pass-{n}/.
        let input = file_set + 1 + index + ".xml".len();
        let fix = "shorten the series name or the group's name";
        check(
            &field,
            &|| format!("the inputs of group {:?}", group.name),
            &[name, DATE_BYTES, "inputs".len()],
            input,
            fix,
        );
        check(
            &field,
            &|| format!("the logs of group {:?}", group.name),
            &[name, DATE_BYTES, "logs".len(), "pass-".len() + PASS_BYTES],
            input,
            fix,
        );
        // {name}/{date}/inits/{groupKey}_{seed:04}.{extension}.
        for &i in group.inits {
            let init = &series.inits[i];
            let extension = init.extensions.iter().map(String::len).max().unwrap_or(0);
            check(
                &|| format!("spec.series.inits[{i}].extensions"),
                &|| format!("the init copies of group {:?}", group.name),
                &[name, DATE_BYTES, "inits".len()],
                group.key.len() + 1 + SEED_BYTES + 1 + extension,
                "shorten the series name, the group's name or the init's extensions",
            );
        }
    }

    // {init}/inits/inits.{MODEL}/{init}_{key}.{extension}, read from the working location.
    let model = "inits.".len() + spec.parameters.model.len();
    for (i, init) in series.inits.iter().enumerate() {
        let extension = init.extensions.iter().map(String::len).max().unwrap_or(0);
        check(
            &|| format!("spec.series.inits[{i}].key"),
            &|| format!("the init file {}_{}.{{extension}}", init.name, init.key),
            &[init.name.len(), "inits".len(), model],
            init.name.len() + 1 + init.key.len() + 1 + extension,
            "shorten the init's name or key",
        );
    }
    problems
}

/// The number of decimal digits of `n`.
fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_count_as_printed() {
        for n in [0, 9, 10, 99, 100, 9999, 10_000] {
            assert_eq!(digits(n), n.to_string().len(), "{n}");
        }
    }

    #[test]
    fn local_limits_each_part_and_s3_the_whole_key() {
        assert_eq!(NameLimit::Local.refuse(&[10, 255], 255), None);
        assert!(NameLimit::Local.refuse(&[10, 256], 1).is_some());
        assert!(NameLimit::Local.refuse(&[10], 256).is_some());
        // "p/" + "ab/" + 1019 = 1024.
        let s3 = NameLimit::S3 { prefix_bytes: 2 };
        assert_eq!(s3.refuse(&[2], 1019), None);
        assert!(s3.refuse(&[2], 1020).is_some());
    }
}
