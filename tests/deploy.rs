//! The deployment files under deploy/ parse and say what docs/operations.md
//! promises. Docker, Kubernetes and systemd cannot run here, so these tests
//! read the files: every YAML document parses, and the structure operators
//! rely on (health checks, probes, secrets, sandboxing) is in place. The
//! Sigil configuration the files carry goes through Sigil's own parser.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use sigil::config::Config;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy() -> PathBuf {
    repo().join("deploy")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every document of a YAML file (multi-document aware), empty ones dropped.
fn load(path: &Path) -> Vec<Yaml> {
    let docs = YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn load_one(path: &Path) -> Yaml {
    let mut docs = load(path);
    assert_eq!(docs.len(), 1, "{} should hold one document", path.display());
    docs.remove(0)
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
}

fn str_of<'a>(node: &'a Yaml, what: &str) -> &'a str {
    node.as_str()
        .unwrap_or_else(|| panic!("{what} should be a string, got {node:?}"))
}

fn vec_of<'a>(node: &'a Yaml, what: &str) -> &'a Vec<Yaml> {
    node.as_vec()
        .unwrap_or_else(|| panic!("{what} should be a list, got {node:?}"))
}

/// Seconds of a compose duration such as `30s`, `1m` or `1m30s`.
fn compose_seconds(text: &str) -> u64 {
    humantime::parse_duration(text)
        .unwrap_or_else(|e| panic!("`{text}` is not a duration: {e}"))
        .as_secs()
}

// ---------------------------------------------------------------- compose

fn compose() -> Yaml {
    load_one(&deploy().join("compose.yaml"))
}

/// A compose `environment:` as a map or as a `KEY=value` list.
fn compose_env(service: &Yaml, key: &str) -> Option<String> {
    let env = &service["environment"];
    if let Some(value) = env[key].as_str() {
        return Some(value.to_owned());
    }
    env.as_vec()?.iter().find_map(|item| {
        let (k, v) = item.as_str()?.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let mut files = Vec::new();
    yaml_files(&deploy(), &mut files);
    assert!(
        files.len() >= 7,
        "expected compose.yaml and the Kubernetes manifests, found {files:?}"
    );
    for file in &files {
        assert!(
            !load(file).is_empty(),
            "{} holds no document",
            file.display()
        );
    }
}

#[test]
fn compose_runs_sigil_and_postgres_each_with_a_healthcheck() {
    let compose = compose();
    for name in ["sigil", "postgres"] {
        let service = &compose["services"][name];
        assert!(service.is_hash(), "compose has no service {name}");
        let test = vec_of(&service["healthcheck"]["test"], "healthcheck.test");
        assert!(test.len() >= 2, "{name}'s healthcheck runs nothing");
    }
    let postgres = &compose["services"]["postgres"];
    assert!(str_of(&postgres["image"], "postgres image").starts_with("postgres:16"));
    let sigil_check: Vec<&str> = vec_of(&compose["services"]["sigil"]["healthcheck"]["test"], "")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        sigil_check.iter().any(|arg| arg.ends_with("/readyz")),
        "sigil's compose healthcheck should probe /readyz, got {sigil_check:?}"
    );
}

#[test]
fn compose_starts_sigil_only_once_postgres_is_healthy() {
    let compose = compose();
    let condition = &compose["services"]["sigil"]["depends_on"]["postgres"]["condition"];
    assert_eq!(condition.as_str(), Some("service_healthy"));
}

#[test]
fn compose_keeps_postgres_data_in_a_named_volume() {
    let compose = compose();
    let declared = compose["volumes"]
        .as_hash()
        .expect("compose declares top-level volumes");
    let mounts = vec_of(
        &compose["services"]["postgres"]["volumes"],
        "postgres volumes",
    );
    let named = mounts.iter().filter_map(Yaml::as_str).any(|mount| {
        let (source, target) = mount.split_once(':').unwrap_or(("", ""));
        declared.contains_key(&Yaml::String(source.to_owned()))
            && target.starts_with("/var/lib/postgresql/data")
    });
    assert!(
        named,
        "postgres should keep /var/lib/postgresql/data in a declared named volume, got {mounts:?}"
    );
}

#[test]
fn compose_gives_sigil_the_kek_from_a_git_ignored_secret_file_in_its_keys_dir() {
    let compose = compose();
    let sigil = &compose["services"]["sigil"];
    let kek = vec_of(&sigil["secrets"], "sigil secrets")
        .iter()
        .find(|s| s["source"].as_str() == Some("kek"))
        .expect("sigil mounts the secret `kek`");
    let keys_dir = compose_env(sigil, "SIGIL_KEYS_DIR").expect("sigil sets SIGIL_KEYS_DIR");
    assert_eq!(
        str_of(&kek["target"], "kek target"),
        format!("{keys_dir}/kek"),
        "Sigil reads the KEK from <keys_dir>/kek"
    );
    assert!(
        compose_env(sigil, "SIGIL_KEK").is_none(),
        "the KEK must not sit in the compose file"
    );

    let secrets = compose["secrets"]
        .as_hash()
        .expect("compose declares top-level secrets");
    assert!(!secrets.is_empty());
    for (name, secret) in secrets {
        let file = str_of(&secret["file"], "secret file");
        let path = deploy().join(file);
        assert!(
            path.starts_with(deploy().join("secrets")),
            "secret {name:?} should live in deploy/secrets/, not {file}"
        );
    }
    let ignore = read(&deploy().join("secrets/.gitignore"));
    assert!(
        ignore.lines().any(|l| l.trim() == "*"),
        "deploy/secrets/ must be git-ignored"
    );
}

#[test]
fn compose_configures_the_issuer_and_a_listener_reachable_from_outside_the_container() {
    let compose = compose();
    let sigil = &compose["services"]["sigil"];
    let issuer = compose_env(sigil, "SIGIL_ISSUER").expect("sigil sets SIGIL_ISSUER");
    assert!(issuer.contains("http"), "issuer {issuer:?}");
    assert_eq!(
        compose_env(sigil, "SIGIL_LISTEN").as_deref(),
        Some("0.0.0.0:8080")
    );
    let ports: Vec<&str> = vec_of(&sigil["ports"], "sigil ports")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(ports.iter().any(|p| p.ends_with(":8080")), "{ports:?}");
}

#[test]
fn compose_gives_sigil_longer_to_stop_than_its_twenty_second_drain() {
    let compose = compose();
    let grace = str_of(
        &compose["services"]["sigil"]["stop_grace_period"],
        "stop_grace_period",
    );
    assert!(compose_seconds(grace) > 20, "stop_grace_period {grace}");
}

// ------------------------------------------------------------- kubernetes

fn k8s_dir() -> PathBuf {
    deploy().join("k8s")
}

/// Every manifest document under deploy/k8s/ except the kustomization.
fn manifests() -> Vec<(PathBuf, Yaml)> {
    let mut files = Vec::new();
    yaml_files(&k8s_dir(), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|f| f.file_name().unwrap() != "kustomization.yaml")
        .flat_map(|f| load(&f).into_iter().map(move |doc| (f.clone(), doc)))
        .collect()
}

fn manifest(kind: &str) -> Yaml {
    let mut found: Vec<Yaml> = manifests()
        .into_iter()
        .filter(|(_, doc)| doc["kind"].as_str() == Some(kind))
        .map(|(_, doc)| doc)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind}");
    found.remove(0)
}

fn sigil_container(deployment: &Yaml) -> &Yaml {
    vec_of(
        &deployment["spec"]["template"]["spec"]["containers"],
        "containers",
    )
    .iter()
    .find(|c| c["name"].as_str() == Some("sigil"))
    .expect("a container named sigil")
}

fn container_env<'a>(container: &'a Yaml, name: &str) -> Option<&'a Yaml> {
    container["env"]
        .as_vec()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
}

/// Whether every label of `selector` is among `labels`.
fn selects(selector: &Yaml, labels: &Yaml) -> bool {
    let selector = selector.as_hash().expect("a non-empty selector");
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| labels.as_hash().unwrap().get(k) == Some(v))
}

#[test]
fn every_kubernetes_manifest_has_an_api_version_a_kind_and_a_name() {
    let manifests = manifests();
    assert!(manifests.len() >= 5, "{} manifests", manifests.len());
    for (file, doc) in &manifests {
        for field in ["apiVersion", "kind"] {
            assert!(
                doc[field].as_str().is_some_and(|s| !s.is_empty()),
                "{} lacks {field}",
                file.display()
            );
        }
        assert!(
            doc["metadata"]["name"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{} lacks metadata.name",
            file.display()
        );
        assert!(
            doc["metadata"]["namespace"].is_badvalue(),
            "{} pins a namespace; the manifests are namespace-agnostic",
            file.display()
        );
    }
}

#[test]
fn the_deployment_runs_two_replicas_ready_on_readyz_and_alive_on_healthz() {
    let deployment = manifest("Deployment");
    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(2));
    let sigil = sigil_container(&deployment);
    assert_eq!(
        sigil["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        sigil["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
}

#[test]
fn the_deployment_requests_resources_and_runs_as_non_root_on_a_read_only_root() {
    let deployment = manifest("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let sigil = sigil_container(&deployment);
    let requests = sigil["resources"]["requests"]
        .as_hash()
        .expect("resources.requests");
    for resource in ["cpu", "memory"] {
        assert!(
            requests.contains_key(&Yaml::String(resource.into())),
            "no {resource} request"
        );
    }
    assert!(sigil["resources"]["limits"]["memory"].as_str().is_some());

    let non_root = pod["securityContext"]["runAsNonRoot"].as_bool() == Some(true)
        || sigil["securityContext"]["runAsNonRoot"].as_bool() == Some(true);
    assert!(non_root, "runAsNonRoot: true");
    let security = &sigil["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    let dropped: Vec<&str> = vec_of(&security["capabilities"]["drop"], "dropped capabilities")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(dropped, ["ALL"]);
}

#[test]
fn the_deployment_takes_the_kek_and_the_database_url_from_the_secret() {
    let deployment = manifest("Deployment");
    let secret = manifest("Secret");
    let secret_name = str_of(&secret["metadata"]["name"], "secret name");
    let sigil = sigil_container(&deployment);
    for var in ["SIGIL_KEK", "SIGIL_DATABASE_URL"] {
        let source = &container_env(sigil, var)
            .unwrap_or_else(|| panic!("sigil's env lacks {var}"))["valueFrom"]["secretKeyRef"];
        assert_eq!(source["name"].as_str(), Some(secret_name), "{var}");
        let key = str_of(&source["key"], "secretKeyRef.key");
        let held = !secret["stringData"][key].is_badvalue() || !secret["data"][key].is_badvalue();
        assert!(held, "the Secret has no key {key} for {var}");
    }
}

#[test]
fn the_secret_holds_only_clearly_marked_placeholders() {
    let secret = manifest("Secret");
    let values = secret["stringData"].as_hash().expect("stringData");
    assert!(
        secret["data"].is_badvalue(),
        "no base64 `data` to hide values in"
    );
    for (key, value) in values {
        let value = str_of(value, "secret value");
        assert!(
            value.contains("REPLACE_WITH"),
            "{key:?} should be a clearly marked placeholder, not {value:?}"
        );
    }
}

#[test]
fn the_deployment_mounts_the_config_map_where_sigil_config_points() {
    let deployment = manifest("Deployment");
    let config_map = manifest("ConfigMap");
    let config_map_name = str_of(&config_map["metadata"]["name"], "config map name");
    let pod = &deployment["spec"]["template"]["spec"];
    let sigil = sigil_container(&deployment);

    let config_path = str_of(
        &container_env(sigil, "SIGIL_CONFIG").expect("SIGIL_CONFIG")["value"],
        "SIGIL_CONFIG",
    );
    assert_eq!(config_path, "/etc/sigil/sigil.toml");
    let volume = vec_of(&pod["volumes"], "volumes")
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == Some(config_map_name))
        .expect("a volume from the ConfigMap");
    let volume_name = str_of(&volume["name"], "volume name");
    let mount = vec_of(&sigil["volumeMounts"], "volumeMounts")
        .iter()
        .find(|m| m["name"].as_str() == Some(volume_name))
        .expect("the ConfigMap volume is mounted");
    let mount_path = str_of(&mount["mountPath"], "mountPath");
    let file = config_path
        .strip_prefix(mount_path)
        .map(|f| f.trim_start_matches('/'))
        .unwrap_or_else(|| panic!("{config_path} is not under {mount_path}"));
    assert!(
        config_map["data"][file].as_str().is_some(),
        "the ConfigMap has no key {file}"
    );
}

#[test]
fn the_deployment_migrates_the_schema_before_serving() {
    let deployment = manifest("Deployment");
    let init = vec_of(
        &deployment["spec"]["template"]["spec"]["initContainers"],
        "initContainers",
    );
    let migrates = init.iter().any(|c| {
        c["args"]
            .as_vec()
            .is_some_and(|args| args.iter().any(|a| a.as_str() == Some("migrate")))
            && container_env(c, "SIGIL_DATABASE_URL").is_some()
    });
    assert!(
        migrates,
        "an init container runs `sigil migrate` against the database"
    );
}

#[test]
fn the_deployment_gives_pods_longer_to_stop_than_sigils_twenty_second_drain() {
    let deployment = manifest("Deployment");
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    assert!(grace > 20, "terminationGracePeriodSeconds {grace}");
}

#[test]
fn the_service_and_the_disruption_budget_select_the_deployments_pods() {
    let deployment = manifest("Deployment");
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert!(selects(
        &deployment["spec"]["selector"]["matchLabels"],
        pod_labels
    ));

    let service = manifest("Service");
    assert!(selects(&service["spec"]["selector"], pod_labels));
    let container_ports: BTreeSet<&str> = vec_of(&sigil_container(&deployment)["ports"], "ports")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for port in vec_of(&service["spec"]["ports"], "service ports") {
        let target = str_of(&port["targetPort"], "targetPort");
        assert!(
            container_ports.contains(target),
            "the Service targets {target}, which the container does not declare"
        );
    }

    let pdb = manifest("PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"].as_i64(), Some(1));
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], pod_labels));
}

#[test]
fn the_kustomization_lists_exactly_the_manifests_in_deploy_k8s() {
    let kustomization = load_one(&k8s_dir().join("kustomization.yaml"));
    assert_eq!(kustomization["kind"].as_str(), Some("Kustomization"));
    let listed: BTreeSet<String> = vec_of(&kustomization["resources"], "resources")
        .iter()
        .map(|r| str_of(r, "resource").to_owned())
        .collect();
    let present: BTreeSet<String> = fs::read_dir(k8s_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| (f.ends_with(".yaml") || f.ends_with(".yml")) && f != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present);
}

#[test]
fn the_sigil_configuration_in_the_config_map_and_the_systemd_example_is_accepted_by_sigil() {
    let config_map = manifest("ConfigMap");
    let from_k8s = str_of(&config_map["data"]["sigil.toml"], "sigil.toml");
    let config = Config::from_toml(from_k8s)
        .unwrap_or_else(|e| panic!("the ConfigMap's sigil.toml is rejected: {e}"));
    assert!(config.issuer.starts_with("https://"));

    let example = read(&deploy().join("systemd/sigil.toml.example"));
    Config::from_toml(&example)
        .unwrap_or_else(|e| panic!("deploy/systemd/sigil.toml.example is rejected: {e}"));
}

// ------------------------------------------------------------- Dockerfile

/// The Dockerfile's instructions, continuation lines joined, comments and
/// blank lines dropped, as (INSTRUCTION, arguments).
fn dockerfile(name: &str) -> Vec<(String, String)> {
    let text = read(&deploy().join(name));
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (op, args) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push((op.to_ascii_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    instructions
}

fn args_of<'a>(instructions: &'a [(String, String)], op: &str) -> Vec<&'a str> {
    instructions
        .iter()
        .filter(|(o, _)| o == op)
        .map(|(_, a)| a.as_str())
        .collect()
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_in_a_slimmer_one() {
    let instructions = dockerfile("Dockerfile");
    let stages = args_of(&instructions, "FROM");
    assert!(stages.len() >= 2, "stages: {stages:?}");
    assert!(stages[0].starts_with("rust:"), "build stage {}", stages[0]);
    let runtime = stages.last().unwrap();
    assert!(!runtime.starts_with("rust:"), "runtime stage {runtime}");
    assert!(
        args_of(&instructions, "COPY")
            .iter()
            .any(|c| c.starts_with("--from=") && c.contains("target/release/sigil")),
        "the runtime stage copies the release binary from the build stage"
    );
}

#[test]
fn the_dockerfile_caches_dependencies_for_every_workspace_member() {
    let instructions = dockerfile("Dockerfile");
    let manifest = read(&repo().join("Cargo.toml"));
    let members_line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("the workspace lists its members");
    let members: Vec<&str> = members_line
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|m| *m != ".")
        .collect();
    assert!(!members.is_empty());
    let copies = args_of(&instructions, "COPY");
    let first_build = instructions
        .iter()
        .position(|(op, args)| op == "RUN" && args.contains("cargo build"))
        .expect("a cargo build");
    let before_build: Vec<&str> = instructions[..first_build]
        .iter()
        .filter(|(op, _)| op == "COPY")
        .map(|(_, a)| a.as_str())
        .collect();
    for member in members {
        let manifest = format!("{member}/Cargo.toml");
        assert!(
            before_build.iter().any(|c| c.contains(&manifest)),
            "{manifest} is not copied before the dependency build"
        );
        assert!(
            copies
                .iter()
                .any(|c| c.split_whitespace().next() == Some(member)
                    || c.split_whitespace().next() == Some(member.split('/').next().unwrap())),
            "the sources of {member} are never copied"
        );
    }
    assert!(
        before_build.iter().any(|c| c.contains("Cargo.lock")),
        "Cargo.lock is copied before the dependency build"
    );
    assert!(
        instructions[first_build].1.contains("--locked"),
        "builds with --locked"
    );
}

/// The top-level repository entries the `sigil` binary reads at compile
/// time: the sources of its two crates (`sigil` at the root and
/// `sigil-store` in store/), their build scripts, and whatever they embed
/// (`include_bytes!`, `include_str!`, `sqlx::migrate!`).
fn compile_time_inputs() -> BTreeSet<String> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let root = repo().canonicalize().unwrap();
    let top = |path: &Path, file: &Path| {
        let top = path
            .strip_prefix(&root)
            .unwrap_or_else(|_| panic!("{} embeds a file outside the repository", file.display()))
            .components()
            .next()
            .unwrap();
        top.as_os_str().to_string_lossy().into_owned()
    };
    let mut inputs = BTreeSet::new();
    for crate_root in [root.clone(), root.join("store")] {
        let mut sources = Vec::new();
        walk(&crate_root.join("src"), &mut sources);
        inputs.insert(top(&crate_root.join("src"), &crate_root));
        if crate_root.join("build.rs").exists() {
            inputs.insert(top(&crate_root.join("build.rs"), &crate_root));
        }
        for file in sources {
            let text = read(&file);
            for (needle, base) in [
                ("include_bytes!(\"", file.parent().unwrap()),
                ("include_str!(\"", file.parent().unwrap()),
                ("migrate!(\"", crate_root.as_path()),
            ] {
                for (i, _) in text.match_indices(needle) {
                    let rest = &text[i + needle.len()..];
                    let relative = &rest[..rest.find('"').unwrap()];
                    let path = base
                        .join(relative)
                        .canonicalize()
                        .unwrap_or_else(|e| panic!("{} embeds {relative}: {e}", file.display()));
                    inputs.insert(top(&path, &file));
                }
            }
        }
    }
    inputs
}

#[test]
fn the_docker_build_copies_and_allows_everything_the_binary_embeds() {
    let instructions = dockerfile("Dockerfile");
    let last_build = instructions
        .iter()
        .rposition(|(op, args)| op == "RUN" && args.contains("cargo build"))
        .expect("a cargo build");
    let copied: Vec<&str> = instructions[..last_build]
        .iter()
        .filter(|(op, _)| op == "COPY")
        .filter_map(|(_, args)| args.split_whitespace().next())
        .collect();
    let ignore = read(&deploy().join("Dockerfile.dockerignore"));
    let inputs = compile_time_inputs();
    assert!(inputs.contains("store"), "{inputs:?}");
    assert!(inputs.contains("assets"), "{inputs:?}");
    for input in inputs {
        assert!(
            copied.contains(&input.as_str()),
            "the build reads {input}/ but the Dockerfile never copies it before `cargo build`"
        );
        assert!(
            ignore.lines().any(|l| l.trim() == format!("!{input}")),
            "the build reads {input}/ but Dockerfile.dockerignore keeps it out of the context"
        );
    }
}

#[test]
fn the_dockerfile_runs_as_a_fixed_non_root_user() {
    let instructions = dockerfile("Dockerfile");
    let user = *args_of(&instructions, "USER").last().expect("a USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid != 0),
        "USER should be a numeric non-root UID (Kubernetes' runAsNonRoot checks it), got {user}"
    );
}

#[test]
fn the_dockerfile_has_a_healthcheck_and_serves_on_all_interfaces() {
    let instructions = dockerfile("Dockerfile");
    let health = args_of(&instructions, "HEALTHCHECK");
    assert_eq!(health.len(), 1);
    assert!(health[0].contains("CMD") && health[0].contains("/healthz"));
    assert_eq!(args_of(&instructions, "ENTRYPOINT"), [r#"["sigil"]"#]);
    assert_eq!(args_of(&instructions, "CMD"), [r#"["serve"]"#]);
    assert_eq!(args_of(&instructions, "EXPOSE"), ["8080"]);
    assert!(
        args_of(&instructions, "ENV")
            .iter()
            .any(|e| e.contains("SIGIL_LISTEN=0.0.0.0:8080"))
    );
    assert!(
        args_of(&instructions, "VOLUME")
            .iter()
            .any(|v| v.contains("/var/lib/sigil"))
    );
}

#[test]
fn the_docker_build_context_never_includes_the_kek_or_local_databases() {
    let ignore = read(&deploy().join("Dockerfile.dockerignore"));
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules.first(),
        Some(&"*"),
        "an allow-list: ignore everything first"
    );
    for rule in rules.iter().filter(|r| r.starts_with('!')) {
        let allowed = rule.trim_start_matches('!');
        assert!(
            !["keys", "deploy", "target", "*", "."].contains(&allowed) && !allowed.ends_with(".db"),
            "the build context re-includes {allowed}"
        );
    }
}

// ---------------------------------------------------------------- systemd

/// `Key=value` lines of the unit (a key may repeat).
fn unit_settings() -> Vec<(String, String)> {
    read(&deploy().join("systemd/sigil.service"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn unit_value(settings: &[(String, String)], key: &str) -> Option<String> {
    settings
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

#[test]
fn the_systemd_unit_runs_sigil_sandboxed_as_a_dynamic_user() {
    let settings = unit_settings();
    for (key, expected) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("MemoryDenyWriteExecute", "yes"),
        ("StateDirectory", "sigil"),
        ("ConfigurationDirectory", "sigil"),
        ("WorkingDirectory", "/var/lib/sigil"),
        ("ExecStart", "/usr/local/bin/sigil serve"),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(
            unit_value(&settings, key).as_deref(),
            Some(expected),
            "{key}= in sigil.service"
        );
    }
    let families =
        unit_value(&settings, "RestrictAddressFamilies").expect("RestrictAddressFamilies");
    assert_eq!(families, "AF_INET AF_INET6 AF_UNIX");
    assert!(unit_value(&settings, "SystemCallFilter").is_some());
    assert!(
        settings
            .iter()
            .any(|(k, v)| k == "Environment" && v == "SIGIL_CONFIG=/etc/sigil/sigil.toml"),
        "Environment=SIGIL_CONFIG=/etc/sigil/sigil.toml"
    );
}

#[test]
fn the_systemd_unit_waits_longer_than_sigils_twenty_second_drain() {
    let settings = unit_settings();
    let stop = unit_value(&settings, "TimeoutStopSec").expect("TimeoutStopSec");
    let seconds: u64 = stop
        .trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("TimeoutStopSec={stop}"));
    assert!(seconds > 20, "TimeoutStopSec={stop}");
}

// ------------------------------------------------------------------ docs

#[test]
fn the_operations_guide_documents_each_deployment_and_links_only_to_files_that_exist() {
    let path = repo().join("docs/operations.md");
    let guide = read(&path);
    for needle in [
        "docker compose -f deploy/compose.yaml up",
        "kubectl apply -k deploy/k8s",
        "deploy/systemd/sigil.service",
        "sigil migrate",
        "sigil keys new-kek",
    ] {
        assert!(
            guide.contains(needle),
            "docs/operations.md never mentions `{needle}`"
        );
    }
    // Relative Markdown links: `](target)` not starting with a scheme or `#`.
    for (i, _) in guide.match_indices("](") {
        let rest = &guide[i + 2..];
        let target = &rest[..rest.find(')').unwrap_or(rest.len())];
        if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
            continue;
        }
        let file = target.split('#').next().unwrap();
        let resolved = path.parent().unwrap().join(file);
        assert!(
            resolved.exists(),
            "docs/operations.md links to {target}, which does not exist"
        );
    }
}

#[test]
fn the_dockerfile_copies_what_the_build_reads_at_compile_time() {
    // askama compiles templates/, include_bytes! embeds assets/, and
    // sqlx::migrate! embeds store/migrations/: a build without them fails.
    let instructions = dockerfile("Dockerfile");
    let copies = args_of(&instructions, "COPY");
    for dir in ["src", "store", "assets", "templates"] {
        assert!(
            copies
                .iter()
                .any(|c| c.split_whitespace().next() == Some(dir)),
            "the Dockerfile does not copy {dir}/"
        );
    }
}
