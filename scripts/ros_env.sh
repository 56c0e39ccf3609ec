# Source this: find ROS 2 and source it, if there is one (sets ROS_DISTRO).
#   1. already sourced (ROS_DISTRO set): nothing to do;
#   2. the prebuilt minimal Humble beside this checkout (../shared/ros2, set up as root);
#   3. a regular install under /opt/ros/<distro>.
_rk_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${ROS_DISTRO:-}" ]; then
  if [ -f "$_rk_root/../shared/ros2/setup.sh" ] && [ "$(id -u)" = 0 ]; then
    echo "ros_env: checking the prebuilt ROS 2 Humble (../shared/ros2/setup.sh); it installs" \
         "the system packages it lacks with apt-get"
    if ! bash "$_rk_root/../shared/ros2/setup.sh"; then
      echo "ros_env: setting up ROS 2 failed (see apt's message above). If apt-get or dpkg" \
           "reported a lock ('Could not get lock ... held by process'), another package" \
           "manager is running (apt, dpkg, unattended-upgrades): wait until it ends and run" \
           "this again; if dpkg was interrupted, 'dpkg --configure -a' repairs it." >&2
      unset _rk_root
      return 1
    fi
  fi
  set +u
  if [ -f /opt/ros2_ws/ros_env.sh ]; then
    # shellcheck disable=SC1091
    source /opt/ros2_ws/ros_env.sh
  else
    for _rk_setup in /opt/ros/jazzy/setup.bash /opt/ros/humble/setup.bash; do
      # shellcheck disable=SC1090
      if [ -f "$_rk_setup" ]; then source "$_rk_setup"; break; fi
    done
  fi
  set -u
fi
if [ -n "${ROS_DISTRO:-}" ]; then
  echo "ros_env: using ROS 2 $ROS_DISTRO"
else
  echo "ros_env: no ROS 2 found; the ROS tests will skip"
fi
unset _rk_root _rk_setup
