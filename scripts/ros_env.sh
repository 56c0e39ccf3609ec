# Source this: find ROS 2 and source it, if there is one (sets ROS_DISTRO).
# RK_YOLO_ROS_DISTRO=humble|jazzy picks the tree; then that one is required (its absence is an
# error, not a reason to skip the ROS tests). Unset, the first of these is used, Humble first:
#   1. already sourced (ROS_DISTRO set): nothing to do;
#   2. the prebuilt minimal tree beside this checkout, set up as root: ../shared/ros2 (Humble,
#      /opt/ros2_ws) or ../shared/ros2-jazzy (Jazzy, /opt/ros2_jazzy);
#   3. a regular install under /opt/ros/<distro>.
_rk_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_rk_want=${RK_YOLO_ROS_DISTRO:-}
case "$_rk_want" in
  ''|humble) _rk_shared=ros2; _rk_env=/opt/ros2_ws/ros_env.sh ;;
  jazzy) _rk_shared=ros2-jazzy; _rk_env=/opt/ros2_jazzy/ros_env.sh ;;
  *) echo "ros_env: RK_YOLO_ROS_DISTRO must be humble or jazzy, got '$_rk_want'" >&2
     return 1 ;;
esac
if [ -z "${ROS_DISTRO:-}" ]; then
  if [ -f "$_rk_root/../shared/$_rk_shared/setup.sh" ] && [ "$(id -u)" = 0 ]; then
    echo "ros_env: checking the prebuilt ROS 2 tree (../shared/$_rk_shared/setup.sh); it" \
         "installs the system packages it lacks with apt-get"
    if ! bash "$_rk_root/../shared/$_rk_shared/setup.sh"; then
      echo "ros_env: setting up ROS 2 failed (see apt's message above). If apt-get or dpkg" \
           "reported a lock ('Could not get lock ... held by process'), another package" \
           "manager is running (apt, dpkg, unattended-upgrades): wait until it ends and run" \
           "this again; if dpkg was interrupted, 'dpkg --configure -a' repairs it." >&2
      unset _rk_root _rk_want _rk_shared _rk_env
      return 1
    fi
  fi
  set +u
  if [ -f "$_rk_env" ]; then
    # shellcheck disable=SC1090
    source "$_rk_env"
  else
    for _rk_distro in ${_rk_want:-jazzy humble}; do
      # shellcheck disable=SC1090
      if [ -f "/opt/ros/$_rk_distro/setup.bash" ]; then
        source "/opt/ros/$_rk_distro/setup.bash"; break
      fi
    done
  fi
  set -u
fi
if [ -n "$_rk_want" ] && [ "${ROS_DISTRO:-}" != "$_rk_want" ]; then
  if [ -n "${ROS_DISTRO:-}" ]; then  # a second tree sourced over the first would mix them
    echo "ros_env: RK_YOLO_ROS_DISTRO=$_rk_want, but ROS 2 $ROS_DISTRO is already sourced;" \
      "use a shell without ROS sourced" >&2
  else
    echo "ros_env: ROS 2 $_rk_want (RK_YOLO_ROS_DISTRO) is not here: set it up as root with" \
      "bash ../shared/$_rk_shared/setup.sh, or install /opt/ros/$_rk_want" >&2
  fi
  unset _rk_root _rk_want _rk_shared _rk_env _rk_distro
  return 1
fi
if [ -n "${ROS_DISTRO:-}" ]; then
  echo "ros_env: using ROS 2 $ROS_DISTRO"
else
  echo "ros_env: no ROS 2 found; the ROS tests will skip"
fi
unset _rk_root _rk_want _rk_shared _rk_env _rk_distro
