#!/bin/sh
# Prints the memory-hotplug state of the guest as items:
#   @@ITEM <key> <rc>\n<text>\n@@ENDITEM
item() {
    v=$(cat "$2" 2>&1)
    rc=$?
    printf '@@ITEM %s %s\n%s\n@@ENDITEM\n' "$1" "$rc" "$v"
}
item file:/proc/zoneinfo /proc/zoneinfo
item file:/sys/devices/system/memory/block_size_bytes /sys/devices/system/memory/block_size_bytes
item file:/proc/meminfo /proc/meminfo
item file:/proc/iomem /proc/iomem
item file:/proc/vmstat /proc/vmstat
for d in /sys/devices/system/memory/memory[0-9]*; do
    [ -d "$d" ] || continue
    n=${d##*/memory}
    item "block:$n:state" "$d/state"
    item "block:$n:phys_index" "$d/phys_index"
    item "block:$n:valid_zones" "$d/valid_zones"
    node=""
    for l in "$d"/node[0-9]*; do
        [ -e "$l" ] && node=${l##*/node}
    done
    printf '@@ITEM block:%s:node 0\n%s\n@@ENDITEM\n' "$n" "$node"
done
