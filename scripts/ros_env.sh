# Source this: find ROS 2 and source it, if there is one (sets ROS_DISTRO).
#   1. already sourced (ROS_DISTRO set): nothing to do;
#   2. the prebuilt minimal Humble beside this checkout (../shared/ros2, set up as root);
#   3. a regular install under /opt/ros/<distro>.
_rk_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${ROS_DISTRO:-}" ]; then
  if [ -f "$_rk_root/../shared/ros2/setup.sh" ] && [ "$(id -u)" = 0 ]; then
    bash "$_rk_root/../shared/ros2/setup.sh"
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
