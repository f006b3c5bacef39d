using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineRl.Pipeline;
using YamlDotNet.RepresentationModel;

namespace OnlineRl.Deploy.Tests;

// docker-compose.yml, the Kubernetes manifests, prometheus.yml, the Grafana provisioning and the Dockerfile
// must parse and agree: service names, commands, the metrics port, config paths and ONLINERL_* variables.
public sealed class DeployFilesTests
{
    private static readonly string[] Services = ["feeder", "generator", "scorer", "learner"];
    private static readonly int MetricsPort = new ServiceEndpointOptions().Port;

    private static List<YamlMappingNode> LoadYaml(params string[] path)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(RepoPaths.Of(path))) stream.Load(reader);
        return stream.Documents.Select(d => Assert.IsType<YamlMappingNode>(d.RootNode)).ToList();
    }

    private static YamlNode? Get(YamlNode node, params string[] keys)
    {
        foreach (var key in keys)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var child)) return null;
            node = child;
        }
        return node;
    }

    private static string? Text(YamlNode node, params string[] keys) => (Get(node, keys) as YamlScalarNode)?.Value;

    private static IEnumerable<YamlNode> Items(YamlNode node, params string[] keys) => (Get(node, keys) as YamlSequenceNode)?.Children ?? [];

    private static List<YamlMappingNode> Manifests() =>
        Directory.GetFiles(RepoPaths.Of("deploy", "k8s"), "*.yaml").Order().SelectMany(f => LoadYaml("deploy", "k8s", Path.GetFileName(f))).ToList();

    private static YamlMappingNode Compose() => LoadYaml("docker-compose.yml").Single();

    [Fact]
    public void Every_file_parses_and_every_manifest_names_its_kind()
    {
        Assert.NotNull(Get(Compose(), "services"));
        LoadYaml("deploy", "prometheus", "prometheus.yml");
        LoadYaml("deploy", "grafana", "provisioning", "datasources", "prometheus.yaml");
        LoadYaml("deploy", "grafana", "provisioning", "dashboards", "onlinerl.yaml");
        JsonDocument.Parse(File.ReadAllText(Dashboard.Path)).Dispose();
        var manifests = Manifests();
        Assert.All(manifests, m =>
        {
            Assert.False(string.IsNullOrEmpty(Text(m, "apiVersion")));
            Assert.False(string.IsNullOrEmpty(Text(m, "kind")));
            Assert.False(string.IsNullOrEmpty(Text(m, "metadata", "name")));
        });
        var kinds = manifests.Select(m => (Text(m, "kind"), Text(m, "metadata", "name"))).ToHashSet();
        foreach (var expected in new[]
                 {
                     ("Deployment", "generator"), ("Deployment", "scorer"), ("Deployment", "feeder"), ("StatefulSet", "learner"),
                     ("PodDisruptionBudget", "generator"), ("PodDisruptionBudget", "scorer"), ("HorizontalPodAutoscaler", "generator"),
                     ("ConfigMap", "onlinerl-config"), ("Service", "generator"), ("Service", "scorer"), ("Service", "feeder"), ("Service", "learner"),
                 })
            Assert.Contains(expected, kinds);
    }

    [Fact]
    public void The_image_publishes_every_tool_under_services_into_app()
    {
        var dockerfile = File.ReadAllText(RepoPaths.Of("deploy", "Dockerfile"));
        Assert.Contains("-o /app", dockerfile);
        var projects = Directory.GetDirectories(RepoPaths.Of("services")).SelectMany(d => Directory.GetFiles(d, "*.csproj")).ToList();
        Assert.Contains(RepoPaths.Of("services", "OnlineRl.Bench", "OnlineRl.Bench.csproj"), projects);
        foreach (var project in projects) Assert.Contains(Path.GetRelativePath(RepoPaths.Root, project), dockerfile);
    }

    [Fact]
    public void Compose_services_run_the_image_command_with_the_mounted_config_and_the_metrics_port()
    {
        var dockerfile = File.ReadAllLines(RepoPaths.Of("deploy", "Dockerfile"));
        Assert.Contains($"EXPOSE {MetricsPort}", dockerfile);
        Assert.Contains(dockerfile, l => l.StartsWith("ENTRYPOINT [\"/app/onlinerl\"]", StringComparison.Ordinal));
        var services = Get(Compose(), "services")!;
        Assert.Equal("deploy/Dockerfile", Text(services, "feeder", "build", "dockerfile"));
        var image = Text(services, "feeder", "image");
        foreach (var name in Services)
        {
            var service = Get(services, name)!;
            Assert.Equal(image, Text(service, "image"));
            var command = Items(service, "command").Select(n => ((YamlScalarNode)n).Value!).ToList();
            Assert.Equal(name, command[0]);
            var config = command[command.IndexOf("--config") + 1];
            Assert.Contains($"./deploy/config/run.yaml:{config}:ro", Items(service, "volumes").Select(v => ((YamlScalarNode)v).Value));
            Assert.Equal(MetricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Text(service, "environment", "ONLINERL_SERVICE__METRICS_PORT"));
        }
        Assert.NotNull(Get(services, "kafka"));
        Assert.Contains("broker,controller", Text(services, "kafka", "environment", "KAFKA_PROCESS_ROLES"));
        Assert.NotNull(Get(services, "redis"));
    }

    [Fact]
    public void Prometheus_scrapes_every_compose_service_on_the_metrics_port()
    {
        var jobs = Items(LoadYaml("deploy", "prometheus", "prometheus.yml").Single(), "scrape_configs").ToList();
        var services = Get(Compose(), "services")!;
        foreach (var name in Services)
        {
            var job = jobs.SingleOrDefault(j => Text(j, "job_name") == name);
            Assert.True(job is not null, $"prometheus.yml has no job {name}");
            var targets = Items(job, "static_configs").SelectMany(s => Items(s, "targets")).Select(t => ((YamlScalarNode)t).Value).ToList();
            var dns = Items(job, "dns_sd_configs").ToList();
            var scraped = targets.Contains($"{name}:{MetricsPort}")
                || dns.Any(d => Text(d, "port") == MetricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture) && Items(d, "names").Any(n => ((YamlScalarNode)n).Value == name));
            Assert.True(scraped, $"job {name} does not scrape {name}:{MetricsPort}");
            Assert.NotNull(Get(services, name));
        }
        Assert.Contains("./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            Items(services, "prometheus", "volumes").Select(v => ((YamlScalarNode)v).Value));
    }

    [Fact]
    public void Kubernetes_workloads_agree_with_compose_on_commands_ports_probes_and_config()
    {
        var manifests = Manifests();
        var configMap = manifests.Single(m => Text(m, "kind") == "ConfigMap");
        foreach (var name in Services)
        {
            var workload = manifests.Single(m => Text(m, "kind") is "Deployment" or "StatefulSet" && Text(m, "metadata", "name") == name);
            Assert.Equal(name == "learner" ? "StatefulSet" : "Deployment", Text(workload, "kind"));
            var pod = Get(workload, "spec", "template")!;
            Assert.Equal(MetricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Text(pod, "metadata", "annotations", "prometheus.io/port"));
            var container = Assert.Single(Items(pod, "spec", "containers"));
            var args = Items(container, "args").Select(a => ((YamlScalarNode)a).Value!).ToList();
            Assert.Equal(name, args[0]);
            var configPath = args[args.IndexOf("--config") + 1];
            var mount = Items(container, "volumeMounts").Single(m => Text(m, "mountPath") == configPath);
            var volume = Items(pod, "spec", "volumes").Single(v => Text(v, "name") == Text(mount, "name"));
            Assert.Equal(Text(configMap, "metadata", "name"), Text(volume, "configMap", "name"));
            Assert.NotNull(Get(configMap, "data", Text(mount, "subPath")!));
            var port = Items(container, "ports").Single(p => Text(p, "name") == "metrics");
            Assert.Equal(MetricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Text(port, "containerPort"));
            Assert.Equal("/readyz", Text(container, "readinessProbe", "httpGet", "path"));
            Assert.Equal("/healthz", Text(container, "livenessProbe", "httpGet", "path"));
            Assert.Equal("metrics", Text(container, "readinessProbe", "httpGet", "port"));
            Assert.Equal("metrics", Text(container, "livenessProbe", "httpGet", "port"));
            var service = manifests.Single(m => Text(m, "kind") == "Service" && Text(m, "metadata", "name") == name);
            Assert.Equal(name, Text(service, "spec", "selector", "app.kubernetes.io/name"));
            Assert.Contains(Items(service, "spec", "ports"), p => Text(p, "port") == MetricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        foreach (var name in new[] { "generator", "scorer" })
            Assert.Contains(manifests, m => Text(m, "kind") == "PodDisruptionBudget" && Text(m, "spec", "selector", "matchLabels", "app.kubernetes.io/name") == name);
        var hpa = manifests.Single(m => Text(m, "kind") == "HorizontalPodAutoscaler");
        Assert.Equal(("Deployment", "generator"), (Text(hpa, "spec", "scaleTargetRef", "kind"), Text(hpa, "spec", "scaleTargetRef", "name")));

        // The learner's checkpoints live on its persistent volume: the run's output_dir is under the claim's mount.
        var learner = manifests.Single(m => Text(m, "kind") == "StatefulSet");
        var claim = Text(Assert.Single(Items(learner, "spec", "volumeClaimTemplates")), "metadata", "name");
        var learnerContainer = Items(learner, "spec", "template", "spec", "containers").Single();
        var dataDir = Text(Items(learnerContainer, "volumeMounts").Single(m => Text(m, "name") == claim), "mountPath")!;
        var outputDir = RunConfig.Load(RepoPaths.Of("deploy", "config", "run.yaml")).OutputDir;
        Assert.StartsWith(dataDir + "/", outputDir);
        Assert.Contains($"learner-data:{dataDir}", Items(Get(Compose(), "services", "learner")!, "volumes").Select(v => ((YamlScalarNode)v).Value));
    }

    [Fact]
    public void The_config_map_holds_the_shipped_run_config_and_it_validates()
    {
        var configMap = Manifests().Single(m => Text(m, "kind") == "ConfigMap");
        Assert.Equal(File.ReadAllText(RepoPaths.Of("deploy", "config", "run.yaml")), Text(configMap, "data", "run.yaml"));
        var config = RunConfig.Load(RepoPaths.Of("deploy", "config", "run.yaml"));
        Assert.True(config.Train.TimeLimitMinutes > 0 || config.Train.Steps > 0);
    }

    [Fact]
    public void Environment_variables_agree_across_compose_and_kubernetes_and_name_config_keys()
    {
        var manifests = Manifests();
        var compose = Get(Compose(), "services")!;
        var keys = ConfigKeys(JsonNode.Parse(new RunConfig().ToJson())!.AsObject(), "");
        var sections = keys.Where(k => !k.Contains('.')).ToHashSet();
        var secrets = manifests.Where(m => Text(m, "kind") == "Secret").ToList();
        foreach (var name in Services)
        {
            var composeEnv = ((YamlMappingNode)Get(compose, name, "environment")!).Children.Keys.Select(k => ((YamlScalarNode)k).Value!).ToHashSet();
            var container = Items(manifests.Single(m => Text(m, "kind") is "Deployment" or "StatefulSet" && Text(m, "metadata", "name") == name),
                "spec", "template", "spec", "containers").Single();
            var env = Items(container, "env").ToList();
            var k8sEnv = env.Select(e => Text(e, "name")!).ToHashSet();
            Assert.Subset(k8sEnv, composeEnv);
            foreach (var variable in composeEnv.Concat(k8sEnv).Where(v => v.StartsWith(RunConfig.EnvironmentPrefix, StringComparison.Ordinal)))
            {
                var key = RunConfig.EnvironmentOverrides(new Dictionary<string, string> { [variable] = "x" }).Keys.Single();
                var section = key.Split('.')[0];
                if (sections.Contains(section) || keys.Contains(key))
                {
                    // transport.kafka is a pass-through map of librdkafka settings: any property below it is a key.
                    Assert.True(keys.Contains(key) || keys.Any(k => key.StartsWith(k + ".", StringComparison.Ordinal) && k == "transport.kafka"),
                        $"{variable} sets '{key}', which the run configuration does not have");
                }
                else
                {
                    // The service and transport sections come with the service processes (conventions); until they are in
                    // RunConfig only those two may appear. Once they are, the branch above checks every key.
                    Assert.True(section is "service" or "transport", $"{variable} sets '{key}': section '{section}' is not a configuration section");
                    Console.WriteLine($"note: {variable} -> {key}: section '{section}' not in RunConfig yet");
                }
            }
            foreach (var secretRef in env.Select(e => Get(e, "valueFrom", "secretKeyRef")).OfType<YamlNode>())
                Assert.Contains(secrets, s => Text(s, "metadata", "name") == Text(secretRef, "name"));
        }
        // Secrets are referenced, never shipped: the placeholder Secrets carry no values.
        Assert.All(secrets, s => Assert.True(Get(s, "data") is null && (Get(s, "stringData") as YamlMappingNode)?.Children.Count is null or 0,
            $"secret {Text(s, "metadata", "name")} must not hold values in the repository"));
    }

    [Fact]
    public void Grafana_provisioning_points_at_the_compose_prometheus_and_the_mounted_dashboards()
    {
        var datasource = Items(LoadYaml("deploy", "grafana", "provisioning", "datasources", "prometheus.yaml").Single(), "datasources").Single();
        var uid = Text(datasource, "uid");
        using var dashboard = JsonDocument.Parse(File.ReadAllText(Dashboard.Path));
        var panels = dashboard.RootElement.GetProperty("panels").EnumerateArray().Where(p => p.GetProperty("type").GetString() != "row").ToList();
        Assert.NotEmpty(panels);
        Assert.All(panels, p => Assert.Equal(uid, p.GetProperty("datasource").GetProperty("uid").GetString()));
        var compose = Get(Compose(), "services")!;
        var prometheusCommand = string.Join(" ", Items(compose, "prometheus", "command").Select(c => ((YamlScalarNode)c).Value));
        Assert.Equal("http://prometheus:9090", Text(datasource, "url"));
        Assert.DoesNotContain("--web.listen-address", prometheusCommand); // Prometheus's default port 9090, as the datasource says
        var provider = Items(LoadYaml("deploy", "grafana", "provisioning", "dashboards", "onlinerl.yaml").Single(), "providers").Single();
        var grafanaVolumes = Items(compose, "grafana", "volumes").Select(v => ((YamlScalarNode)v).Value).ToList();
        Assert.Contains($"./deploy/grafana/dashboards:{Text(provider, "options", "path")}:ro", grafanaVolumes);
        Assert.Contains("./deploy/grafana/provisioning:/etc/grafana/provisioning:ro", grafanaVolumes);
    }

    private static HashSet<string> ConfigKeys(JsonObject node, string prefix)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, value) in node)
        {
            var key = prefix + name;
            keys.Add(key);
            if (value is JsonObject child) keys.UnionWith(ConfigKeys(child, key + "."));
        }
        return keys;
    }
}
