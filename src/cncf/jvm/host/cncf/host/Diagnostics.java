package cncf.host;

import java.io.BufferedReader;
import java.io.FileReader;
import java.lang.management.ClassLoadingMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryUsage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The host's own evidence, answered to PING: loaded and unloaded classes, live
 * isolated loaders (counted through weak references), metaspace in use, and per
 * component its loader's parent and the class names it refused. With
 * {@code {"gc": true}} it collects garbage first, so that "live" means reachable.
 */
final class Diagnostics {
    private Diagnostics() {}

    static Map<String, Object> stats(Host host, boolean gc) throws InterruptedException {
        if (gc) {
            int before = -1;
            for (int i = 0; i < 8; i++) {
                System.gc();
                Thread.sleep(10);
                int now = host.liveLoaders();
                if (now == before && i >= 2) break;
                before = now;
            }
        }
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        m.put("pid", Host.pid());
        m.put("rss_kb", rssKb());
        m.put("instances", new ArrayList<String>(host.components.keySet()));
        m.put("calls_in_flight", host.calls.size());
        m.put("live_loaders", host.liveLoaders());
        m.put("loaders_created", host.loadersCreated);
        ClassLoadingMXBean cl = ManagementFactory.getClassLoadingMXBean();
        m.put("loaded_classes", cl.getLoadedClassCount());
        m.put("unloaded_classes", cl.getUnloadedClassCount());
        m.put("total_loaded_classes", cl.getTotalLoadedClassCount());
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if ("Metaspace".equals(pool.getName())) {
                MemoryUsage u = pool.getUsage();
                m.put("metaspace_used", u.getUsed());
                m.put("metaspace_committed", u.getCommitted());
            }
        }
        Runtime rt = Runtime.getRuntime();
        m.put("heap_used", rt.totalMemory() - rt.freeMemory());
        m.put("heap_max", rt.maxMemory());
        m.put("threads", Thread.activeCount());
        List<Object> loaders = new ArrayList<Object>();
        for (Component c : host.components.values()) loaders.add(c.describe());
        m.put("loaders", loaders);
        return m;
    }

    static long rssKb() {
        BufferedReader r = null;
        try {
            r = new BufferedReader(new FileReader("/proc/self/status"));
            String line;
            while ((line = r.readLine()) != null) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.substring(6).trim().split("\\s+")[0]);
                }
            }
        } catch (Exception ignored) {
            // not Linux
        } finally {
            if (r != null) try { r.close(); } catch (Exception ignored) { /* nothing */ }
        }
        return -1;
    }
}
