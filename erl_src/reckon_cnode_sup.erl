%%% @doc Top supervisor of the `reckon_cnode' application: one worker,
%%% the {@link reckon_cnode} shim.
%%% @end
-module(reckon_cnode_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

%% @doc Starts the supervisor, registered as `reckon_cnode_sup'.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    SupFlags = #{strategy => one_for_one, intensity => 5, period => 10},
    Shim = #{id => reckon_cnode,
             start => {reckon_cnode, start_link, []},
             restart => permanent,
             %% terminate/2 may wait ~2 s for a spawned C node to exit
             shutdown => 5000,
             type => worker,
             modules => [reckon_cnode]},
    {ok, {SupFlags, [Shim]}}.
