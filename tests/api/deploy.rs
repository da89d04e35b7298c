//! The deployment artefacts (deploy/compose.yaml, deploy/kubernetes/*.yaml) agree with the
//! server: the ports it listens on, the probe paths it answers, the environment variables it
//! reads and the command lines it accepts. Schema validity is tests/deploy/validate.sh's job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use crate::config_docs::{config_leaves, env_name, repo_path};
use crate::harness::TestApp;
use portcullis::config::Config;
use serde_yaml::Value as Yaml;
use std::collections::BTreeMap;

const PUBLIC_PORT: u16 = 4444;
const ADMIN_PORT: u16 = 4445;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// All documents of a (multi-document) YAML file.
fn documents(text: &str) -> Vec<Yaml> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Yaml::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kubernetes_objects() -> Vec<Yaml> {
    let mut files: Vec<_> = std::fs::read_dir(repo_path("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
        .iter()
        .flat_map(|p| documents(&std::fs::read_to_string(p).unwrap()))
        .collect()
}

fn at<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))
}

fn str_at<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Yaml::as_str)
}

fn seq(v: Option<&Yaml>) -> Vec<&Yaml> {
    v.and_then(Yaml::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

fn strings(v: Option<&Yaml>) -> Vec<String> {
    seq(v)
        .into_iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn of_kind<'a>(objects: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    objects
        .iter()
        .filter(|o| str_at(o, &["kind"]) == Some(kind))
        .collect()
}

/// Process-level variables the manifests may set that are not configuration keys: glibc's
/// mmap threshold, which returns freed hashing buffers to the system (deployment.yaml).
const RUNTIME_ENV: &[&str] = &["MALLOC_MMAP_THRESHOLD_"];

/// Every environment name the server reads.
fn known_env_names() -> Vec<String> {
    config_leaves()
        .iter()
        .map(|(k, _)| env_name(k))
        .chain(RUNTIME_ENV.iter().map(|s| s.to_string()))
        .collect()
}

/// Loads the configuration the way the process would from these variables; every name must
/// be one the server reads (unknown names would be silently ignored, so a typo is a bug).
fn load_config(env: &[(String, String)], origin: &str) -> Config {
    let known = known_env_names();
    for (name, _) in env {
        assert!(
            known.contains(name),
            "{origin}: {name} is not a configuration environment variable (see docs/configuration.md)"
        );
    }
    Config::load_from(None, env).unwrap_or_else(|e| panic!("{origin}: {e}"))
}

/// The binary accepts this command line: clap parses everything before `--help`, so an
/// unknown subcommand or flag fails with exit code 2 while a valid one prints help (exit 0).
async fn assert_cli_accepts(args: &[String], origin: &str) {
    let mut argv = vec!["portcullis".to_string()];
    argv.extend(args.iter().cloned());
    argv.push("--help".into());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = portcullis::cli::execute(argv, &mut out, &mut err).await;
    assert_eq!(
        code,
        0,
        "{origin}: `portcullis {}` is rejected: {}",
        args.join(" "),
        String::from_utf8_lossy(&err)
    );
    assert!(String::from_utf8_lossy(&out).contains("Usage:"));
}

/// The Dockerfile's runtime user, which the manifests must run as.
fn dockerfile_uid() -> i64 {
    read("Dockerfile")
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A container's environment, with Secret references resolved from the Secret manifests.
fn container_env(c: &Yaml, secrets: &BTreeMap<(String, String), String>) -> Vec<(String, String)> {
    seq(c.get("env"))
        .into_iter()
        .map(|e| {
            let name = str_at(e, &["name"]).unwrap().to_string();
            let value = match str_at(e, &["value"]) {
                Some(v) => v.to_string(),
                None => {
                    let r = at(e, &["valueFrom", "secretKeyRef"])
                        .unwrap_or_else(|| panic!("{name}: only value and secretKeyRef are used"));
                    let key = (
                        str_at(r, &["name"]).unwrap().to_string(),
                        str_at(r, &["key"]).unwrap().to_string(),
                    );
                    secrets
                        .get(&key)
                        .unwrap_or_else(|| panic!("{name}: no Secret {key:?} in deploy/kubernetes"))
                        .clone()
                }
            };
            (name, value)
        })
        .collect()
}

struct Pods<'a> {
    containers: Vec<(&'a str, &'a Yaml)>,
    deployment: &'a Yaml,
}

fn pods(objects: &[Yaml]) -> Pods<'_> {
    let deployments = of_kind(objects, "Deployment");
    assert_eq!(deployments.len(), 1);
    let mut containers = Vec::new();
    for kind in ["Deployment", "Job"] {
        for o in of_kind(objects, kind) {
            for c in seq(at(o, &["spec", "template", "spec", "containers"])) {
                containers.push((kind, c));
            }
        }
    }
    Pods {
        containers,
        deployment: deployments[0],
    }
}

fn secrets(objects: &[Yaml]) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for s in of_kind(objects, "Secret") {
        let name = str_at(s, &["metadata", "name"]).unwrap().to_string();
        let data = at(s, &["stringData"]).and_then(Yaml::as_mapping).unwrap();
        for (k, v) in data {
            out.insert(
                (name.clone(), k.as_str().unwrap().to_string()),
                v.as_str().unwrap().to_string(),
            );
        }
    }
    out
}

/// (probe, path, port number) of the Deployment's probes, named ports resolved.
fn k8s_probes(deployment: &Yaml) -> Vec<(String, String, u16)> {
    let c = seq(at(deployment, &["spec", "template", "spec", "containers"]))[0];
    let ports = container_ports(c);
    ["startupProbe", "livenessProbe", "readinessProbe"]
        .iter()
        .filter_map(|p| Some((p, at(c, &[p, "httpGet"])?)))
        .map(|(p, get)| {
            let port = match get.get("port").unwrap() {
                Yaml::String(name) => ports[name.as_str()],
                n => n.as_u64().unwrap() as u16,
            };
            (
                p.to_string(),
                str_at(get, &["path"]).unwrap().to_string(),
                port,
            )
        })
        .collect()
}

fn container_ports(c: &Yaml) -> BTreeMap<String, u16> {
    seq(c.get("ports"))
        .into_iter()
        .map(|p| {
            (
                str_at(p, &["name"]).unwrap().to_string(),
                at(p, &["containerPort"]).unwrap().as_u64().unwrap() as u16,
            )
        })
        .collect()
}

fn labels_match(selector: &Yaml, labels: &Yaml) -> bool {
    selector
        .as_mapping()
        .unwrap()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// Services: each targets a named container port; the admin port is never exposed outside
/// the cluster by default. The disruption budget covers the server pods.
fn check_services(objects: &[Yaml], ports: &BTreeMap<String, u16>, pod_labels: &Yaml) {
    let services = of_kind(objects, "Service");
    assert_eq!(services.len(), 2);
    let mut targeted = Vec::new();
    for s in &services {
        assert!(labels_match(
            at(s, &["spec", "selector"]).unwrap(),
            pod_labels
        ));
        let kind = str_at(s, &["spec", "type"]).unwrap_or("ClusterIP");
        for p in seq(at(s, &["spec", "ports"])) {
            let target = str_at(p, &["targetPort"]).unwrap();
            let port = *ports
                .get(target)
                .unwrap_or_else(|| panic!("no port {target}"));
            assert_eq!(at(p, &["port"]).unwrap().as_u64(), Some(u64::from(port)));
            if port == ADMIN_PORT {
                assert_eq!(
                    kind, "ClusterIP",
                    "the admin API must stay inside the cluster"
                );
            }
            targeted.push(port);
        }
    }
    targeted.sort();
    assert_eq!(targeted, vec![PUBLIC_PORT, ADMIN_PORT]);

    let pdb = of_kind(objects, "PodDisruptionBudget");
    assert_eq!(pdb.len(), 1);
    assert!(labels_match(
        at(pdb[0], &["spec", "selector", "matchLabels"]).unwrap(),
        pod_labels
    ));
}

/// Every container: non-root as the image's user, read-only root, a command line the binary
/// accepts, and only environment variables the server reads, with values it accepts.
async fn check_containers(objects: &[Yaml], pods: &Pods<'_>) {
    let secrets = secrets(objects);
    let uid = dockerfile_uid();
    let mut commands = Vec::new();
    for (kind, c) in &pods.containers {
        let origin = format!("{kind} container {}", str_at(c, &["name"]).unwrap());
        let pod = of_kind(objects, kind)
            .into_iter()
            .find(|o| {
                seq(at(o, &["spec", "template", "spec", "containers"]))
                    .iter()
                    .any(|x| x == c)
            })
            .unwrap();
        let sc = at(pod, &["spec", "template", "spec", "securityContext"]).unwrap();
        assert_eq!(at(sc, &["runAsNonRoot"]).unwrap().as_bool(), Some(true));
        assert_eq!(
            at(sc, &["runAsUser"]).unwrap().as_i64(),
            Some(uid),
            "{origin}"
        );
        let csc = c.get("securityContext").unwrap();
        assert_eq!(
            at(csc, &["readOnlyRootFilesystem"]).unwrap().as_bool(),
            Some(true)
        );
        assert_eq!(
            at(csc, &["allowPrivilegeEscalation"]).unwrap().as_bool(),
            Some(false)
        );
        assert!(str_at(c, &["image"]).unwrap().starts_with("portcullis"));
        assert!(
            at(c, &["resources", "requests", "memory"]).is_some(),
            "{origin}"
        );

        let env = container_env(c, &secrets);
        let cfg = load_config(&env, &origin);
        assert!(cfg.dsn.starts_with("postgres://"), "{origin}: {}", cfg.dsn);
        let args = strings(c.get("args"));
        assert_cli_accepts(&args, &origin).await;
        commands.push(args);
    }
    assert!(commands.iter().any(|a| a[..2] == ["serve", "all"]));
    assert!(commands.iter().any(|a| a[..2] == ["migrate", "sql"]));
}

#[tokio::test]
async fn deploy_kubernetes_manifests_match_the_server() {
    let defaults = Config::default();
    assert_eq!(defaults.serve.public.port, PUBLIC_PORT);
    assert_eq!(defaults.serve.admin.port, ADMIN_PORT);

    let objects = kubernetes_objects();
    let pods = pods(&objects);
    let deployment = pods.deployment;
    let pod_spec = at(deployment, &["spec", "template", "spec"]).unwrap();
    let pod_labels = at(deployment, &["spec", "template", "metadata", "labels"]).unwrap();

    assert_eq!(
        at(deployment, &["spec", "replicas"]).unwrap().as_u64(),
        Some(2)
    );
    // The shutdown deadline (finishing requests in flight) must fit in the grace period.
    let grace = at(pod_spec, &["terminationGracePeriodSeconds"])
        .and_then(Yaml::as_u64)
        .unwrap();
    assert!(grace >= 30, "terminationGracePeriodSeconds {grace}");

    // Ports: the server's, by name.
    let server = seq(pod_spec.get("containers"))[0];
    let ports = container_ports(server);
    assert_eq!(ports.get("public"), Some(&PUBLIC_PORT));
    assert_eq!(ports.get("admin"), Some(&ADMIN_PORT));

    // Probes: alive and ready, on the admin listener.
    let probes = k8s_probes(deployment);
    let find = |name: &str| probes.iter().find(|(p, _, _)| p == name).unwrap();
    assert_eq!(find("livenessProbe").1, "/health/alive");
    assert_eq!(find("readinessProbe").1, "/health/ready");
    assert!(probes.iter().all(|(_, _, port)| *port == ADMIN_PORT));

    check_services(&objects, &ports, pod_labels);
    check_containers(&objects, &pods).await;
}

/// Compose's `${NAME:-default}` / `${NAME:?message}` interpolation, with a sample value for
/// required variables (32 characters, enough for SECRETS_SYSTEM).
fn interpolate(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').unwrap();
            let expr = &r[..end];
            rest = &r[end + 1..];
            if let Some((_, default)) = expr.split_once(":-").or_else(|| expr.split_once('-')) {
                out.push_str(default);
            } else {
                out.push_str("sample-value-0123456789abcdefghi");
            }
        } else {
            panic!("use ${{NAME}} in compose.yaml: {s}");
        }
    }
    out.push_str(rest);
    out
}

fn compose_services() -> Vec<(String, Yaml)> {
    let doc = documents(&read("deploy/compose.yaml")).remove(0);
    at(&doc, &["services"])
        .and_then(Yaml::as_mapping)
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

fn compose_env(service: &Yaml) -> Vec<(String, String)> {
    match service.get("environment") {
        None => vec![],
        Some(Yaml::Mapping(m)) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Yaml::String(s) => s.clone(),
                    Yaml::Null => String::new(),
                    other => serde_yaml::to_string(other).unwrap().trim().to_string(),
                };
                (k.as_str().unwrap().to_string(), interpolate(&v))
            })
            .collect(),
        Some(Yaml::Sequence(list)) => list
            .iter()
            .map(|e| {
                let (k, v) = e.as_str().unwrap().split_once('=').unwrap();
                (k.to_string(), interpolate(v))
            })
            .collect(),
        Some(other) => panic!("environment: {other:?}"),
    }
}

/// (path, port) pairs the compose health check requests: `/dev/tcp/HOST/PORT` and `/health/*`.
fn compose_health_targets(service: &Yaml) -> Vec<(String, u16)> {
    let test = strings(at(service, &["healthcheck", "test"])).join(" ");
    let port: u16 = test
        .split("/dev/tcp/")
        .nth(1)
        .and_then(|s| s.split('/').nth(1))
        .and_then(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()
                .map(str::to_string)
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("health check has no /dev/tcp/HOST/PORT: {test}"));
    let paths: Vec<(String, u16)> = test
        .match_indices("/health/")
        .map(|(i, _)| {
            let path: String = test[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '_')
                .collect();
            (path, port)
        })
        .collect();
    assert!(
        !paths.is_empty(),
        "health check requests no /health path: {test}"
    );
    paths
}

#[tokio::test]
async fn deploy_compose_file_matches_the_server() {
    let services = compose_services();
    let ours: Vec<&(String, Yaml)> = services
        .iter()
        .filter(|(_, s)| {
            str_at(s, &["image"]).is_some_and(|i| i.starts_with("portcullis"))
                || s.get("build").is_some()
        })
        .collect();
    let uid = dockerfile_uid().to_string();
    let mut commands = Vec::new();
    for (name, s) in &ours {
        let origin = format!("compose service {name}");
        assert_eq!(str_at(s, &["user"]), Some(uid.as_str()), "{origin}");
        assert_eq!(at(s, &["read_only"]).and_then(Yaml::as_bool), Some(true));
        let cfg = load_config(&compose_env(s), &origin);
        assert!(cfg.dsn.starts_with("postgres://"), "{origin}: {}", cfg.dsn);
        let args = strings(s.get("command"));
        assert_cli_accepts(&args, &origin).await;
        commands.push((name.as_str(), args));
    }
    let (migrate, _) = commands
        .iter()
        .find(|(_, a)| a[..2] == ["migrate", "sql"])
        .unwrap();
    let (server_name, _) = commands
        .iter()
        .find(|(_, a)| a[..2] == ["serve", "all"])
        .unwrap();
    let server = &services.iter().find(|(n, _)| n == server_name).unwrap().1;

    // The server starts after the migration succeeded and the database is healthy.
    let deps = at(server, &["depends_on"]).unwrap();
    assert_eq!(
        str_at(deps, &[migrate, "condition"]),
        Some("service_completed_successfully")
    );
    let db = deps
        .as_mapping()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() != Some(migrate))
        .unwrap();
    assert_eq!(str_at(db.1, &["condition"]), Some("service_healthy"));

    // Published ports are the listeners'; the admin API is published on loopback only.
    let mut published = Vec::new();
    for p in strings(server.get("ports")) {
        let container: u16 = p
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches("/tcp")
            .parse()
            .unwrap();
        if container == ADMIN_PORT {
            assert!(
                p.starts_with("127.0.0.1:"),
                "admin port published beyond loopback: {p}"
            );
        }
        published.push(container);
    }
    published.sort();
    assert_eq!(published, vec![PUBLIC_PORT, ADMIN_PORT]);

    // The health check asks the admin listener's readiness probe.
    let targets = compose_health_targets(server);
    assert_eq!(targets, vec![("/health/ready".to_string(), ADMIN_PORT)]);
}

/// The probe paths of both artefacts answer 200 on a running server configured as the
/// Deployment configures it (TLS terminated in front): probes carry no forwarding headers and
/// still pass, while the rest of the admin API insists on them.
#[tokio::test]
async fn deploy_probe_paths_answer_200_with_the_manifest_settings() {
    let objects = kubernetes_objects();
    let secrets = secrets(&objects);
    let pods = pods(&objects);
    let (_, server) = pods
        .containers
        .iter()
        .find(|(k, _)| *k == "Deployment")
        .unwrap();
    let manifest_cfg = load_config(&container_env(server, &secrets), "Deployment");
    assert!(!manifest_cfg.serve.tls.allow_termination_from.is_empty());

    let mut targets: Vec<(String, u16)> = k8s_probes(pods.deployment)
        .into_iter()
        .map(|(_, path, port)| (path, port))
        .collect();
    for (_, s) in compose_services() {
        if s.get("healthcheck").is_some() && s.get("build").is_some() {
            targets.extend(compose_health_targets(&s));
        }
    }
    assert!(targets.len() >= 4, "{targets:?}");

    let app = TestApp::spawn_secure_with(|cfg| {
        cfg.serve.tls.allow_termination_from =
            manifest_cfg.serve.tls.allow_termination_from.clone();
    })
    .await;
    for (path, port) in &targets {
        let base = match *port {
            PUBLIC_PORT => &app.public,
            ADMIN_PORT => &app.admin,
            other => panic!("probe on unknown port {other}"),
        };
        let res = app.http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path} on port {port}");
        assert_eq!(
            res.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({ "status": "ok" })
        );
    }

    // Not a probe: a plain request is refused, one forwarded as HTTPS from loopback (the
    // documented `kubectl exec … --fake-tls-termination` route) is served.
    let res = app.get(app.admin("/clients")).await;
    assert_eq!(res.status(), 502);
    let res = app
        .get_with(app.admin("/clients"), &[("X-Forwarded-Proto", "https")])
        .await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}
