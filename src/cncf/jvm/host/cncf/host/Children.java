package cncf.host;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The processes a component started, so that they end with it in a shared host.
 *
 * <p>On Linux a new process's parent is the <em>thread</em> that forked it (the
 * JDK's launcher forks on the thread calling {@code ProcessBuilder.start}), and
 * {@code /proc/self/task/TID/children} lists each thread's children. The
 * component's executor threads know their own task ({@code /proc/thread-self});
 * their children are read while they live and when they end, and on unload the
 * component's processes and all their descendants are killed. Processes are
 * identified by pid and start time, so a reused pid is never killed.
 *
 * <p>Pids come in two spaces when the host runs in a PID namespace of its own
 * without a /proc of its own (the hub's {@code unshare --pid}): /proc shows the
 * outer pids, while kill(2) (and ProcessHandle) take the namespace's. Processes
 * are found and checked through /proc, and each is translated to the host's
 * own namespace (the {@code NSpid:} line of its status) just before the kill.
 *
 * <p>Threads the component created itself do not tell the host their task; at
 * unload those still alive are matched to their task by name (HotSpot gives
 * each Java thread its first 15 characters as the Linux task's {@code comm}),
 * only where the name is unambiguous: exactly one live Java thread and exactly
 * one task carry it, so a component renaming threads can make the host skip a
 * process, never kill a neighbour's. Processes started from threads that have
 * already ended are not found (their children passed to the JVM's main task);
 * they end with the host. Elsewhere than Linux this does nothing.
 */
final class Children {
    private Children() {}

    /** "/proc/PID/task/TID" of the calling thread, or null (not Linux, or /proc not mounted). */
    static String self() {
        try {
            File f = new File("/proc/thread-self").getCanonicalFile();
            return f.getPath().indexOf("/task/") > 0 ? f.getPath() : null;
        } catch (IOException e) {
            return null;
        }
    }

    /** Add the current children of a task (pid → start time) to {@code into}. */
    static void record(String task, Map<Long, Long> into) {
        if (task == null) return;
        String text = read(task + "/children");
        if (text == null) return;
        for (String tok : text.trim().split("\\s+")) {
            if (tok.isEmpty()) continue;
            try {
                long pid = Long.parseLong(tok);
                long start = startTime(pid);
                if (start >= 0) into.put(pid, start);
            } catch (NumberFormatException ignored) {
                // not a pid
            }
        }
    }

    /** Record the children of the component's own threads whose task their name identifies. */
    static void recordThreads(List<Thread> mine, Map<Long, Long> into) {
        if (mine.isEmpty()) return;
        String self = self();
        if (self == null) return;
        File[] tasks = new File(self).getParentFile().listFiles();
        if (tasks == null) return;
        Map<String, List<String>> byComm = new HashMap<String, List<String>>();
        for (File t : tasks) {
            String c = read(t.getPath() + "/comm");
            if (c == null) continue;
            if (c.endsWith("\n")) c = c.substring(0, c.length() - 1);
            List<String> l = byComm.get(c);
            if (l == null) byComm.put(c, l = new ArrayList<String>());
            l.add(t.getPath());
        }
        Map<String, Integer> javaNames = new HashMap<String, Integer>();
        ThreadGroup root = Thread.currentThread().getThreadGroup();
        while (root.getParent() != null) root = root.getParent();
        Thread[] all = new Thread[root.activeCount() + 16];
        int n = root.enumerate(all, true);
        for (int i = 0; i < n; i++) {
            String k = nativeName(all[i].getName());
            if (k != null) javaNames.put(k, javaNames.containsKey(k) ? javaNames.get(k) + 1 : 1);
        }
        for (Thread t : mine) {
            String k = nativeName(t.getName());
            if (k == null || !Integer.valueOf(1).equals(javaNames.get(k))) continue;
            List<String> l = byComm.get(k);
            if (l != null && l.size() == 1) record(l.get(0), into);
        }
    }

    /** The Linux name HotSpot gives a thread (its first 15 characters), for plain ASCII names; else null. */
    private static String nativeName(String name) {
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c < 0x20 || c > 0x7e) return null;
        }
        return name.length() > 15 ? name.substring(0, 15) : name;
    }

    /**
     * Kill the processes (where still the same process) and every descendant; returns how many.
     *
     * <p>The tree is frozen before it is killed: each process found is stopped
     * (SIGSTOP), and /proc is read again until no new descendant appears. A stopped
     * process can neither fork nor exit, so no child is born after the scan that
     * missed it, and none is handed to init (out of the tree) because its parent
     * died between the scan and the kill, which a scan-then-kill leaves open.
     * Then every process of the frozen tree is killed at once.
     */
    static int end(Map<Long, Long> roots) {
        if (roots.isEmpty()) return 0;
        Set<Long> doomed = new LinkedHashSet<Long>();
        for (Map.Entry<Long, Long> e : roots.entrySet()) {
            if (startTime(e.getKey()) == e.getValue()) doomed.add(e.getKey());
        }
        if (doomed.isEmpty()) return 0;
        Set<Long> frozen = new LinkedHashSet<Long>();
        for (int pass = 0; pass < 16; pass++) {
            Set<Long> found = descendants(doomed, frozen);
            found.removeAll(frozen);
            if (found.isEmpty()) break;
            signal("STOP", found);
            frozen.addAll(found);
        }
        signal("KILL", frozen);
        return frozen.size();
    }

    /** The roots and their descendants, from a scan of /proc (ppid links); {@code also} count as roots. */
    private static Set<Long> descendants(Set<Long> roots, Set<Long> also) {
        Map<Long, List<Long>> kids = new HashMap<Long, List<Long>>();
        File[] procs = new File("/proc").listFiles();
        if (procs != null) {
            for (File p : procs) {
                String n = p.getName();
                if (n.isEmpty() || !Character.isDigit(n.charAt(0))) continue;
                long[] st = stat(p.getPath() + "/stat");
                if (st == null) continue;
                List<Long> l = kids.get(st[0]);
                if (l == null) kids.put(st[0], l = new ArrayList<Long>());
                l.add(Long.parseLong(n));
            }
        }
        Set<Long> out = new LinkedHashSet<Long>(roots);
        out.addAll(also);
        List<Long> todo = new ArrayList<Long>(out);
        while (!todo.isEmpty()) {
            List<Long> l = kids.get(todo.remove(todo.size() - 1));
            if (l == null) continue;
            for (Long k : l) {
                if (out.add(k)) todo.add(k);
            }
        }
        return out;
    }

    /**
     * Send a signal (STOP or KILL) with kill(1), in the host's own namespace: /proc
     * pids are translated when the host runs in a PID namespace whose /proc is not
     * its own. KILL falls back to ProcessHandle (Java 9+, by reflection: the host
     * is Java 8 code) if kill(1) cannot be run.
     */
    private static void signal(String sig, Set<Long> procPids) {
        int level = nsLevel(selfStatus());
        Set<Long> pids = new LinkedHashSet<Long>();
        for (Long p : procPids) {
            long own = ownPid(p, level);
            if (own > 0) pids.add(own);
        }
        if (pids.isEmpty()) return;
        List<String> argv = new ArrayList<String>();
        argv.add("kill");
        argv.add("-" + sig);
        for (Long pid : pids) argv.add(String.valueOf(pid));
        try {
            // Its output goes to /dev/null, never to a pipe closed early: kill(1) reports
            // each pid already gone, and a closed pipe made it die of SIGPIPE at the
            // first such report, before it signalled the pids after it (how a
            // grandchild outlived its component's unload).
            File devNull = new File("/dev/null");
            Process p = new ProcessBuilder(argv)
                    .redirectInput(ProcessBuilder.Redirect.from(devNull))
                    .redirectOutput(ProcessBuilder.Redirect.to(devNull))
                    .redirectError(ProcessBuilder.Redirect.to(devNull))
                    .start();
            p.waitFor();
            return;
        } catch (Exception noKill) {
            // below
        }
        if (!"KILL".equals(sig) || level != 0) return;
        try {
            Class<?> ph = Class.forName("java.lang.ProcessHandle");
            Method of = ph.getMethod("of", long.class);
            Method destroy = ph.getMethod("destroyForcibly");
            for (Long pid : pids) {
                java.util.Optional<?> h = (java.util.Optional<?>) of.invoke(null, pid);
                if (h.isPresent()) destroy.invoke(h.get());
            }
        } catch (Exception java8) {
            // nothing more to try
        }
    }

    private static String selfStatus() {
        return read("/proc/self/status");
    }

    /** How deep the host's own PID namespace is below /proc's (0: the same namespace). */
    private static int nsLevel(String status) {
        String[] ns = nspid(status);
        return ns == null ? 0 : ns.length - 1;
    }

    private static String[] nspid(String status) {
        if (status == null) return null;
        for (String line : status.split("\n")) {
            if (line.startsWith("NSpid:")) return line.substring(6).trim().split("\\s+");
        }
        return null;
    }

    /** The pid of a process (a /proc pid) in the host's own namespace, or -1. */
    private static long ownPid(long procPid, int level) {
        if (level == 0) return procPid;
        String[] ns = nspid(read("/proc/" + procPid + "/status"));
        if (ns == null || ns.length <= level) return -1L;
        try {
            return Long.parseLong(ns[level]);
        } catch (NumberFormatException e) {
            return -1L;
        }
    }

    /** A process's start time (clock ticks since boot), or -1 when it is gone. */
    static long startTime(long pid) {
        long[] st = stat("/proc/" + pid + "/stat");
        return st == null ? -1L : st[1];
    }

    /** {ppid, starttime} from a /proc/PID/stat file (fields 4 and 22), or null. */
    private static long[] stat(String path) {
        String s = read(path);
        if (s == null) return null;
        int close = s.lastIndexOf(')');
        if (close < 0) return null;
        String[] f = s.substring(close + 1).trim().split("\\s+");
        // f[0] is field 3 (state): field N is f[N - 3].
        if (f.length < 20) return null;
        try {
            return new long[] {Long.parseLong(f[1]), Long.parseLong(f[19])};
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static String read(String path) {
        InputStream in = null;
        try {
            in = new FileInputStream(path);
            byte[] buf = new byte[4096];
            StringBuilder sb = new StringBuilder();
            int n;
            while ((n = in.read(buf)) > 0) {
                sb.append(new String(buf, 0, n, Host.UTF8));
                if (sb.length() > 1 << 20) break;
            }
            return sb.toString();
        } catch (IOException e) {
            return null;
        } finally {
            if (in != null) {
                try {
                    in.close();
                } catch (IOException ignored) {
                    // nothing
                }
            }
        }
    }
}
