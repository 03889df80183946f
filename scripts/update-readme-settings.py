#!/usr/bin/env python3
# Regenerates the settings table in README.md from host/src/config.rs (a unit test checks they agree).
import re
src=open('host/src/config.rs').read()
rows=re.findall(r'SettingDoc \{\s*env: "([^"]+)",\s*default: "([^"]*)",\s*meaning: "((?:[^"\\]|\\.)*)",?\s*\}',src)
out=["| Variable | Default | Meaning |","|---|---|---|"]
for e,d,m in rows:
    shown = f"`{d}`" if d else "(unset)"
    out.append(f"| `{e}` | {shown} | {m.replace(chr(92)+chr(34), chr(34))} |")
table="\n".join(out)+"\n"
r=open('README.md').read()
start=r.index("| Variable | Default | Meaning |")
end=r.index("\n\n", start)+1
r=r[:start]+table+r[end:]
open('README.md','w').write(r)
print(len(rows))
