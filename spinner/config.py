"""Typed settings, one class per service, read once at startup and passed down.

Sources, strongest first: values given by the caller (CLI flags), environment
variables `SPINNER_<FIELD>`, the TOML file named by `SPINNER_CONFIG_FILE`
(top-level keys, or a table named after the service), then the defaults.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from spinner import podpolicy
from spinner.mapping import DEFAULT_MAX_MAP_LENGTH

if TYPE_CHECKING:
    from spinner.bundles import S3Location


def default_home() -> Path:
    return Path.home() / ".spinner"


class _TomlSource(PydanticBaseSettingsSource):
    """Reads SPINNER_CONFIG_FILE: shared top-level keys, overlaid by the service's own table."""

    def __init__(self, settings_cls: type[BaseSettings], section: str) -> None:
        super().__init__(settings_cls)
        self._section = section

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns everything at once

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("SPINNER_CONFIG_FILE")
        if not path:
            return {}
        with open(path, "rb") as f:
            data = tomllib.load(f)
        # A top-level table is a service's, unless it is the value of a setting (k8s_allowed_node_selectors).
        fields = self.settings_cls.model_fields
        merged = {k: v for k, v in data.items() if not isinstance(v, dict) or k in fields}
        section = data.get(self._section, {})
        if isinstance(section, dict):
            merged.update(section)
        return {k: v for k, v in merged.items() if k in fields}


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPINNER_", frozen=True, extra="ignore")
    section: ClassVar[str] = "common"

    home: Path = Field(default_factory=default_home, description="state folder (SQLite file, snapshots, logs)")
    database_url: str = Field(default="", description="SQLAlchemy async URL; SQLite in home when empty")
    cluster: str = "default"
    mqtt_url: str = Field(default="", description="mqtt://host:port; no events when empty (services poll)")
    poll_interval: float = Field(default=1.0, gt=0, description="seconds between database re-reads")
    runner_heartbeat_interval: float = Field(
        default=5.0, gt=0, description="seconds between a task runner's heartbeats (the executor tells its runners)"
    )
    database_retry_timeout: float = Field(
        default=300.0,
        gt=0,
        description="seconds a database outage is waited out: reports of tries are retried this long before they"
        " are given up (longer than a database restart)",
    )
    host: str = "127.0.0.1"
    identity_dir: str = Field(
        default="",
        description="folder of the services' keys (<name>.key, this service's own; <name>.pub, every service's, "
        "trusted); empty: <home>/identity, where a service makes its own key when it has none",
    )
    grpc_reflection: bool = Field(default=False, description="answer gRPC server reflection (grpcurl list)")
    telemetry_exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str = ""
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _fill_database_url(self) -> CommonSettings:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{self.home / 'spinner.db'}")
        return self

    @property
    def identities(self) -> Path:
        """Where the service keys are (spinner/identity.py)."""
        return Path(self.identity_dir) if self.identity_dir else self.home / "identity"

    @property
    def snapshot_root(self) -> Path:
        """Where dagsync keeps snapshots; `current` points at the newest complete one."""
        return self.home / "snapshots"

    @property
    def log_dir(self) -> Path:
        """Local task logs (standalone mode)."""
        return self.home / "logs"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        section = getattr(settings_cls, "section", "common")
        return (init_settings, env_settings, _TomlSource(settings_cls, section))


class FernetSettings(CommonSettings):
    """The key that encrypts variables and connections at rest (spinner/fernet.py): gateway and executor."""

    fernet_key: str = Field(
        default="",
        description="Fernet key(s), comma separated, newest first; the same on every gateway and executor. "
        "Empty: read from <home>/fernet_key (standalone makes it); neither: the service refuses to start",
    )


class S3Settings(CommonSettings):
    """The S3 API every S3 user here talks to (bundles, log archive)."""

    s3_endpoint_url: str = Field(default="", description="S3 endpoint (MinIO, moto); empty: AWS")
    s3_region: str = "us-east-1"


class BundleSettings(S3Settings):
    """Where published DAG bundles live in S3 (`spinner dags push`); read by dagsync and task runners."""

    section: ClassVar[str] = "bundles"
    dags_bucket: str = Field(default="", description="S3 bucket of DAG bundles; empty: no S3")
    dags_prefix: str = Field(default="dags", description="key prefix of the bundle in the bucket")
    max_file_bytes: int = Field(default=5 * 1024 * 1024, gt=0, description="larger bundle files are refused")
    bundle_cache: Path | None = Field(default=None, description="task runners' bundle cache folder")

    def s3_location(self) -> S3Location:
        from spinner.bundles import S3Location

        return S3Location(
            bucket=self.dags_bucket,
            prefix=self.dags_prefix,
            endpoint_url=self.s3_endpoint_url,
            region=self.s3_region,
            max_file_bytes=self.max_file_bytes,
        )


class DagSyncSettings(BundleSettings):
    """Mirrors S3 when `dags_bucket` is set, else the local folder `source_dir` (standalone)."""

    section: ClassVar[str] = "dagsync"
    port: int = 50051
    source_dir: Path = Path("examples/dags")
    sync_interval: float = Field(default=5.0, gt=0, description="seconds between polls of the source")
    keep_snapshots: int = Field(
        default=5, ge=1, description="snapshots kept besides those of runs not yet ended (those are never pruned)"
    )


# A runner is judged dead after this many heartbeat intervals without one (and not during a database outage).
MISSED_HEARTBEATS = 6


class PodPolicySettings(CommonSettings):
    """What a task's pod may be (spinner/podpolicy.py). The executor enforces it when it makes a pod; the
    scheduler checks DAG files against it when it parses them, so set these where both read them (the top of
    the config file, or SPINNER_K8S_* in both services' environments): launch is the authority either way."""

    k8s_image: str = Field(default="spinner:latest", description="the task image; always allowed in pod_override")
    k8s_max_memory: str = Field(default="16Gi", description="the most memory a task may request or be limited to")
    k8s_max_cpu: str = Field(default="8", description="the most CPU a task may request or be limited to")
    k8s_allowed_images: list[str] = Field(
        default_factory=list,
        description="other images a pod_override container may use: exact names, or prefixes ending in *",
    )
    k8s_allowed_volume_kinds: list[str] = Field(
        default_factory=lambda: list(podpolicy.DEFAULT_VOLUME_KINDS),
        description="volume kinds a pod_override may add (hostPath is never allowed)",
    )
    k8s_allowed_node_selectors: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in podpolicy.DEFAULT_NODE_SELECTORS.items()},
        description="nodeSelector keys a pod_override may set, each with its allowed values (empty: any)",
    )
    k8s_allowed_toleration_keys: list[str] = Field(
        default_factory=lambda: list(podpolicy.DEFAULT_TOLERATION_KEYS),
        description="taint keys a pod_override may tolerate",
    )
    k8s_allow_extra_containers: bool = Field(
        default=False, description="whether a pod_override may add sidecars and initContainers (still checked)"
    )
    k8s_allowed_secrets: list[str] = Field(
        default_factory=list,
        description="Secrets a pod_override may read (env, envFrom, volumes): names, or prefixes ending in *; "
        "never the platform's own",
    )

    @model_validator(mode="after")
    def _check_pod_policy(self) -> PodPolicySettings:
        self.pod_policy()  # hostPath among the volume kinds, or a maximum that is no quantity: refuse to start
        return self

    def pod_policy(self) -> podpolicy.PodPolicy:
        return podpolicy.PodPolicy(
            image=self.k8s_image,
            allowed_images=tuple(self.k8s_allowed_images),
            volume_kinds=tuple(self.k8s_allowed_volume_kinds),
            node_selectors={k: tuple(v) for k, v in self.k8s_allowed_node_selectors.items()},
            toleration_keys=tuple(self.k8s_allowed_toleration_keys),
            allow_extra_containers=self.k8s_allow_extra_containers,
            allowed_secrets=tuple(self.k8s_allowed_secrets),
            max_memory=self.k8s_max_memory,
            max_cpu=self.k8s_max_cpu,
        )


class DagUserSettings(CommonSettings):
    dag_user: str = Field(
        default="auto",
        description="who DAG code runs as when the platform runs as root (the scheduler's parses, the local "
        "backend's tries): a user name or uid; auto: nobody (for tries: if it can run this installation's "
        "interpreter, else root with a warning); same: the service's own user",
    )


class SchedulerSettings(PodPolicySettings, DagUserSettings):
    section: ClassVar[str] = "scheduler"
    partition: str = ""
    port: int = 0  # 0: any free port; the chosen address is written to the lease row
    executor_address: str = "127.0.0.1:50052"
    lease_seconds: float = Field(default=15.0, gt=0)
    transaction_idle_timeout: int = Field(
        default=3,
        ge=1,
        description="seconds (MariaDB) a scheduler's transaction may sit between two statements before the database"
        " ends it: a leader frozen inside one (SIGSTOP) then lets a standby take the partition over",
    )
    parse_timeout: float = Field(default=30.0, gt=0, description="seconds a DAG file may take to import")
    parse_memory_mb: int = Field(default=1024, ge=0, description="address space of a parse worker; 0: no limit")
    parse_retry_interval: float = Field(
        default=30.0,
        gt=0,
        description="seconds before a file whose parser timed out or died is parsed again (doubling)",
    )
    heartbeat_timeout: float = Field(
        default=0.0,
        ge=0,
        description="seconds without a runner heartbeat before its try is failed (or retried); 0: "
        f"{MISSED_HEARTBEATS} heartbeat intervals (30 s with the default interval)",
    )

    @model_validator(mode="after")
    def _derive_heartbeat_timeout(self) -> SchedulerSettings:
        if not self.heartbeat_timeout:
            object.__setattr__(self, "heartbeat_timeout", MISSED_HEARTBEATS * self.runner_heartbeat_interval)
        return self

    max_running_tasks: int = Field(
        default=0, ge=0, description="queued+running tries in the partition at once; 0: the tier's default"
    )
    full_pass_interval: float = Field(
        default=10.0, gt=0, description="seconds between passes that look at every active run, not just changed ones"
    )
    max_map_length: int = Field(
        default=DEFAULT_MAX_MAP_LENGTH,
        ge=1,
        description="the most task instances one mapped task may expand to; more fails the task",
    )

    # Deadlines for DAGs that declare none, by tier (seconds after `deadline_reference`; 0: off).
    deadline_tier_1: float = Field(default=0.0, ge=0, description="tier 1's default deadline in seconds; 0: none")
    deadline_tier_2: float = Field(default=0.0, ge=0, description="tier 2's default deadline in seconds; 0: none")
    deadline_tier_3: float = Field(default=0.0, ge=0, description="tier 3's default deadline in seconds; 0: none")
    deadline_reference: Literal["logical_date", "queued_at"] = "queued_at"
    deadline_email: list[str] = Field(
        default_factory=list, description="who a default deadline emails when missed; empty: shown on the run only"
    )

    def default_deadline(self, tier: int) -> float:
        return {1: self.deadline_tier_1, 2: self.deadline_tier_2, 3: self.deadline_tier_3}.get(tier, 0.0)

    def running_task_limit(self, tier: int) -> int:
        """Tier 1 (most important) gets the most room; lower tiers are held tighter."""
        return self.max_running_tasks or {1: 1024, 2: 512, 3: 256}.get(tier, 256)


class LogStoreSettings(S3Settings):
    """Where task logs go besides the pod's stdout: Elasticsearch while the try runs, S3 when it ends.

    Read by the task runner (from its environment, set by the executor), and by the logs service.
    """

    section: ClassVar[str] = "logs"
    logs_bucket: str = Field(default="", description="S3 bucket of ended tries' logs; empty: no S3 archive")
    logs_prefix: str = Field(default="logs", description="key prefix: <prefix>/<dag_id>/<run_id>/<task_id>/<try>.log")
    es_hosts: list[str] = Field(default_factory=list, description="Elasticsearch URLs; empty: no shipping")
    es_index_pattern: str = Field(
        default="spinner-logs-%Y.%m.%d", description="strftime pattern of the index a line goes to (by its day)"
    )
    es_buffer_lines: int = Field(
        default=10_000, ge=1, description="lines a runner holds while Elasticsearch is slow; older ones are dropped"
    )

    def runner_env(self) -> dict[str, str]:
        """The settings a task runner needs, as the environment the executor gives it."""
        env = {
            "SPINNER_LOGS_BUCKET": self.logs_bucket,
            "SPINNER_LOGS_PREFIX": self.logs_prefix,
            "SPINNER_ES_HOSTS": json.dumps(self.es_hosts),
            "SPINNER_ES_INDEX_PATTERN": self.es_index_pattern,
            "SPINNER_ES_BUFFER_LINES": str(self.es_buffer_lines),
            "SPINNER_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "SPINNER_S3_REGION": self.s3_region,
        }
        return {k: v for k, v in env.items() if v not in ("", "[]")}


class KubernetesAccessSettings(CommonSettings):
    """How a service reaches the Kubernetes API (the executor makes pods; the logs service reads them)."""

    k8s_kubeconfig: str = Field(default="", description="kubeconfig file; empty: the in-cluster service account")
    k8s_namespace: str = "spinner"


class ExecutorSettings(LogStoreSettings, KubernetesAccessSettings, PodPolicySettings, FernetSettings, DagUserSettings):
    section: ClassVar[str] = "executor"
    port: int = 50052
    backend: Literal["local", "kubernetes", "instant"] = Field(
        default="local",
        description="local: a process per try; kubernetes: a pod per try; instant: tries succeed at once (benchmarks)",
    )
    name: str = "executor-0"
    token_secret: str = Field(
        default="",
        description="HMAC key for runner tokens, the same on every executor; empty: <home>/runner_token_key, made once",
    )
    max_parallel: int = Field(default=32, ge=1)
    local_tries_on_stop: Literal["keep", "stop"] = Field(
        default="keep",
        description="local backend, when the executor stops cleanly: keep (its tries run on, and the next executor "
        "on this host adopts them, as pods outlive an executor) or stop (they are killed and recorded as failed)",
    )
    xcom_max_bytes: int = Field(
        default=64 * 1024, gt=0, description="the largest XCom a task may push (its JSON, in bytes)"
    )
    # Kubernetes backend (one pod per try).
    k8s_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    k8s_service_account: str = "spinner-task"
    k8s_python: str = Field(default="python", description="the interpreter in the image that runs spinner.runner")
    k8s_pending_timeout: float = Field(default=300.0, gt=0, description="seconds a pod may stay pending")
    k8s_keep_failed_pods: bool = False
    k8s_default_request_memory: str = "256Mi"
    k8s_default_request_cpu: str = "100m"
    # Email that tasks and callbacks send through RunnerService.SendNotification (never seen by DAG code).
    smtp_host: str = Field(default="", description="SMTP server for notifications; empty: sending email is refused")
    smtp_port: int = Field(default=25, gt=0)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = Field(default=False, description="upgrade the connection with STARTTLS")
    smtp_ssl: bool = Field(default=False, description="connect over TLS (usually port 465)")
    smtp_from: str = Field(default="spinner@localhost", description="the From address of notifications")
    smtp_timeout: float = Field(default=30.0, gt=0)
    callback_timeout: float = Field(
        default=300.0, gt=0, description="seconds a DAG callback or deadline process may run before it is stopped"
    )


class LogsSettings(LogStoreSettings, KubernetesAccessSettings):
    """Standalone (`source` local): the files the executor wrote. Else the pod while a try runs,
    S3 once it has ended, and Elasticsearch when either cannot be read. The database (read only)
    says whether a followed try has ended."""

    section: ClassVar[str] = "logs"
    port: int = 50053
    source: Literal["local", "remote"] = Field(
        default="local", description="local: log files under home; remote: pod, S3 and Elasticsearch"
    )
    follow_interval: float = Field(default=0.5, gt=0, description="seconds between reads while following a log")
    follow_ended_quiet: float = Field(
        default=5.0,
        gt=0,
        description="seconds a followed log must stay quiet once its try has ended without marking it complete "
        "(its process killed) before the follow ends",
    )
    follow_state_interval: float = Field(
        default=2.0, gt=0, description="the fewest seconds between two reads of a quiet followed log's try state"
    )


class GatewaySettings(FernetSettings):
    section: ClassVar[str] = "gateway"
    http_port: int = 8080
    grpc_port: int = 50050
    logs_address: str = "127.0.0.1:50053"
    dagsync_address: str = "127.0.0.1:50051"
    secret_key: str = Field(
        default="",
        description="signs session cookies; every gateway behind one load balancer needs the same. "
        "Empty: read from (or written once to) <home>/gateway_secret",
    )
    session_max_age: float = Field(default=12 * 3600, gt=0, description="seconds a browser login lasts")
    cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto", description="Secure flag of the session cookie; auto: when the request came over HTTPS"
    )
    trusted_header: str = Field(
        default="", description="e.g. X-Forwarded-User: trust this header's user name (behind an SSO proxy only)"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="with trusted_header: client addresses allowed to set it; empty: any"
    )
    auth_cache_seconds: float = Field(default=5.0, ge=0, description="how long a credential's grants are reused")
