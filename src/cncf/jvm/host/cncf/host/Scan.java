package cncf.host;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/** Reads a jar once: its class names, its META-INF/cncf/collaborator, class headers. */
final class Scan {
    /** A cache of scans, held by the host instance (never static: see Host). */
    static Map<String, Result> cache() {
        return Collections.synchronizedMap(new LinkedHashMap<String, Result>() {
            protected boolean removeEldestEntry(Map.Entry<String, Result> e) { return size() > 64; }
        });
    }

    static Result of(Map<String, Result> cache, File jar) throws IOException {
        String key = jar.getCanonicalPath() + "|" + jar.length() + "|" + jar.lastModified();
        Result r = cache.get(key);
        if (r == null) {
            r = new Result(jar);
            cache.put(key, r);
        }
        return r;
    }

    static final class Result {
        final File jar;
        final List<String> classes = new ArrayList<String>();
        final String collaboratorFile;
        private List<String> collaborators;
        private final Map<String, String[]> headers = new LinkedHashMap<String, String[]>();

        Result(File jar) throws IOException {
            this.jar = jar;
            JarFile jf = new JarFile(jar, false);
            try {
                String cf = null;
                for (java.util.Enumeration<JarEntry> e = jf.entries(); e.hasMoreElements(); ) {
                    JarEntry je = e.nextElement();
                    String n = je.getName();
                    if (n.endsWith(".class") && !n.startsWith("META-INF/") && !n.endsWith("module-info.class")
                            && !n.endsWith("package-info.class")) {
                        classes.add(n.substring(0, n.length() - 6).replace('/', '.'));
                    }
                }
                JarEntry c = jf.getJarEntry(Component.COLLABORATOR_FILE);
                if (c != null) {
                    BufferedReader r = new BufferedReader(new InputStreamReader(jf.getInputStream(c), Host.UTF8));
                    String line;
                    while ((line = r.readLine()) != null) {
                        line = line.trim();
                        if (line.length() > 0 && !line.startsWith("#")) { cf = line; break; }
                    }
                }
                collaboratorFile = cf;
            } finally {
                jf.close();
            }
        }

        boolean contains(String cls) { return classes.contains(cls); }

        List<String> similar(String cls, int max) {
            String simple = cls.substring(cls.lastIndexOf('.') + 1).toLowerCase();
            List<String> out = new ArrayList<String>();
            for (String c : classes) {
                String s = c.substring(c.lastIndexOf('.') + 1).toLowerCase();
                if (s.equals(simple) || s.equals(simple + "$") || (simple.length() > 3 && s.contains(simple))) {
                    out.add(c);
                    if (out.size() >= max) break;
                }
            }
            return out;
        }

        List<String> publicClasses(int max) {
            List<String> out = new ArrayList<String>();
            for (String c : classes) {
                if (c.indexOf('$') < 0 && !c.startsWith("scala.") && !c.startsWith("cncf.collaborator.")) {
                    out.add(c);
                    if (out.size() >= max) break;
                }
            }
            return out;
        }

        /** Concrete classes implementing the Collaborator, from class-file headers only. */
        synchronized List<String> collaborators() throws IOException {
            if (collaborators != null) return collaborators;
            JarFile jf = new JarFile(jar, false);
            try {
                for (String c : classes) {
                    if (c.startsWith("cncf.collaborator.")) continue;
                    JarEntry je = jf.getJarEntry(c.replace('.', '/') + ".class");
                    InputStream in = jf.getInputStream(je);
                    try {
                        String[] h = ClassHeader.read(in);
                        if (h != null) headers.put(c, h);
                    } finally {
                        in.close();
                    }
                }
            } finally {
                jf.close();
            }
            List<String> out = new ArrayList<String>();
            Map<String, Boolean> memo = new LinkedHashMap<String, Boolean>();
            for (Map.Entry<String, String[]> e : headers.entrySet()) {
                String[] h = e.getValue();
                int access = Integer.parseInt(h[0]);
                boolean concrete = (access & 0x0001) != 0 && (access & (0x0200 | 0x0400)) == 0;
                if (concrete && implementsCollaborator(e.getKey(), memo, 0)) out.add(e.getKey());
            }
            headers.clear();
            collaborators = out;
            return out;
        }

        private boolean implementsCollaborator(String cls, Map<String, Boolean> memo, int depth) {
            if (Component.COLLABORATOR.equals(cls)) return true;
            Boolean m = memo.get(cls);
            if (m != null) return m;
            String[] h = headers.get(cls);
            boolean yes = false;
            if (h != null && depth < 64) {
                for (int i = 1; i < h.length && !yes; i++) {
                    if (h[i] != null) yes = implementsCollaborator(h[i], memo, depth + 1);
                }
            }
            memo.put(cls, yes);
            return yes;
        }
    }

    /** Just enough of the class-file format to read access flags, super and interfaces. */
    static final class ClassHeader {
        /** [access, super, interfaces...] with dotted names, or null when not a class file. */
        static String[] read(InputStream raw) throws IOException {
            java.io.DataInputStream in = new java.io.DataInputStream(new java.io.BufferedInputStream(raw, 8192));
            if (in.readInt() != 0xCAFEBABE) return null;
            in.readUnsignedShort();
            in.readUnsignedShort();
            int count = in.readUnsignedShort();
            String[] utf = new String[count];
            int[] classIndex = new int[count];
            for (int i = 1; i < count; i++) {
                int tag = in.readUnsignedByte();
                switch (tag) {
                    case 1: utf[i] = in.readUTF(); break;
                    case 7: classIndex[i] = in.readUnsignedShort(); break;
                    case 8: case 16: case 19: case 20: in.skipBytes(2); break;
                    case 3: case 4: case 9: case 10: case 11: case 12: case 17: case 18: in.skipBytes(4); break;
                    case 5: case 6: in.skipBytes(8); i++; break;
                    case 15: in.skipBytes(3); break;
                    default: return null;
                }
            }
            int access = in.readUnsignedShort();
            in.readUnsignedShort(); // this
            int sup = in.readUnsignedShort();
            int n = in.readUnsignedShort();
            String[] out = new String[n + 2];
            out[0] = Integer.toString(access);
            out[1] = sup == 0 ? null : utf[classIndex[sup]].replace('/', '.');
            for (int i = 0; i < n; i++) out[i + 2] = utf[classIndex[in.readUnsignedShort()]].replace('/', '.');
            return out;
        }
    }
}
